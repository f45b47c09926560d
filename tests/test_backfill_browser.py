"""A marketer backfills a hub from a CSV export in Debian's Chromium (Playwright): upload, see the
header and first rows, adjust a column, preview the Braze requests, start, and watch the progress
bar fill as delivery goes on. Screenshots land in test-artifacts/."""

from __future__ import annotations

import pytest

from integrations.models import Backfill, BackfillStatus, Hub, Submission, SubmissionStatus
from integrations.services.delivery import delivery_run
from tests.test_backfill import csv_bytes, rows
from tests.test_browser import (  # noqa: F401 (fixtures)
    PASSWORD,
    braze_accepts,
    browser,
    demo_hub,
    demo_marketer,
    expect,
    page,
    shot,
)

pytestmark = pytest.mark.browser


def test_marketer_uploads_a_csv_previews_starts_and_watches_the_progress(
    live_server, page, braze_accepts, tmp_path, settings  # noqa: F811
):
    # given
    settings.VAR_DIR = tmp_path
    hub = demo_hub()
    Hub.objects.filter(pk=hub.pk).update(active=False)  # delivery waits until the test says go
    username = demo_marketer(hub)
    records = rows(120)
    records[7][5] = "last tuesday"  # one unreadable row
    export = tmp_path / "komo-entries.csv"
    export.write_bytes(csv_bytes(records, delimiter=";", bom=True))
    base = live_server.url
    page.goto(f"{base}/admin/login/?next=/hubs/{hub.slug}/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")

    # from the dashboard to the backfill page; upload the export
    page.click("text=Backfill from CSV")
    page.set_input_files("input[type=file]", str(export))
    page.click("text=Upload and read the header")
    expect(page.get_by_test_id("first-rows").get_by_text("person0@example.com")).to_be_visible()
    assert page.input_value("input[data-column='First Name']") == "first_name"
    assert page.input_value("#id_time_column") == "Entered At"
    page.fill("input[data-column='Post-code']", "")  # leave the post code out
    shot(page, "backfill-01-columns")

    # previews the first rows as Braze requests; nothing is stored
    page.click("text=Preview the Braze requests")
    previews = page.get_by_test_id("backfill-previews")
    expect(previews.get_by_test_id("braze-body").first).to_contain_text("person0@example.com")
    assert "3056" not in previews.inner_text()
    assert not Submission.objects.exists()
    shot(page, "backfill-02-preview")

    # starts: the file is read, rows wait for delivery (the hub is off)
    page.click("[data-testid=backfill-start]")
    expect(page.get_by_text("The backfill has started.")).to_be_visible()
    expect(page.get_by_test_id("file-progress")).to_have_attribute("value", "100")
    expect(page.get_by_test_id("delivery-progress")).to_have_attribute("value", "0")
    expect(page.locator("[data-field=queued]")).to_have_text("119")
    expect(page.locator("[data-field=bad]")).to_have_text("1")
    shot(page, "backfill-03-started")

    # delivery runs; the page's script moves the bar without a reload, then shows "Finished"
    Hub.objects.filter(pk=hub.pk).update(active=True)
    delivery_run(hub_id=hub.pk, run_seconds=10)
    expect(page.locator("[data-field=delivered]")).to_have_text("119", timeout=10_000)
    expect(page.locator(".pagehead .status")).to_have_text("Finished", timeout=10_000)
    expect(page.get_by_test_id("delivery-progress")).to_have_attribute("value", "100")
    assert Submission.objects.filter(status=SubmissionStatus.DELIVERED).count() == 119
    assert sum(len(body.get("attributes", [])) for body in braze_accepts) == 119
    assert Backfill.objects.get().status == BackfillStatus.FINISHED
    shot(page, "backfill-04-finished")

    # the unreadable row is in the downloadable report, by row number
    with page.expect_download() as download:
        page.get_by_test_id("report-link").click()
    assert "8," in download.value.path().read_text()
    assert page.console_errors == []

    # the list names who started it
    page.click("text=All backfills")
    expect(page.locator("table.table").get_by_text(username)).to_be_visible()
    shot(page, "backfill-05-list")

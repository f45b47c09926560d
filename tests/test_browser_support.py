"""Journey (c): support finds a submission by the part of an email before the ``@`` and by a phone
in local format, and redelivers it; and the charts, at 1366 px and 390 px. Hub list, dashboard
and submission page have no page-wide horizontal scroll. Screenshots in test-artifacts/."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from integrations.models import HubMembership, HubRole, Submission, SubmissionStatus
from integrations.services.hub_stats import hub_stats_refresh
from tests.test_browser import (  # noqa: F401 (fixtures)
    ARTIFACTS,
    PASSWORD,
    braze_accepts,
    browser,
    demo_hub,
    demo_submissions,
    expect,
)

pytestmark = pytest.mark.browser
# Elements reaching past the viewport's right edge, named in a failure.
WIDEST = """() => Array.from(document.querySelectorAll('body *')).filter(
  el => el.getBoundingClientRect().right > window.innerWidth + 1
    && !el.parentElement.closest('.table-wrap, pre, table')
).slice(0, 8).map(el => `${el.tagName}.${el.className} in ${el.parentElement.className}`)"""


def no_page_scroll(page) -> None:
    page.wait_for_load_state("load")  # with its stylesheet
    width = page.evaluate("document.documentElement.scrollWidth")
    wide = page.evaluate(WIDEST) if width > page.viewport_size["width"] else []
    assert width <= page.viewport_size["width"], (page.url, width, wide)


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def log_in(page, base: str, username: str) -> None:
    page.goto(f"{base}/admin/login/?next=/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/")


def support_user(hub) -> str:
    user = get_user_model().objects.create_user("support-sam", password=PASSWORD, is_staff=True)
    HubMembership.objects.create(user=user, hub=hub, role=HubRole.VIEWER)
    return user.username


@pytest.mark.parametrize("width", [1366, 390])
def test_support_finds_by_email_local_part_and_local_phone_and_redelivers(
        live_server, browser, braze_accepts, width: int) -> None:  # noqa: F811
    # given: alex@example.com's entry failed; its phone arrived as "0412 555 019"
    hub = demo_hub()
    failed = demo_submissions(hub)
    username = support_user(hub)
    context = browser.new_context(viewport={"width": width, "height": 900}, locale="en-GB")
    page = context.new_page()
    page.set_default_timeout(15_000)
    base = live_server.url
    started = time.monotonic()
    log_in(page, base, username)
    no_page_scroll(page)
    shot(page, f"support-{width}-1-hubs")

    # the dashboard's "Search all" opens the hub's submissions
    page.click(f"a[href='/hubs/{hub.slug}/']")
    no_page_scroll(page)
    page.click("a:has-text('Search all')")

    # by the part of the email before the @, in another case (the portal's list, not the admin)
    expect(page.get_by_role("heading", name="Submissions")).to_be_visible()
    search = page.locator("#id_q")
    search.fill("Alex")
    search.press("Enter")
    rows = page.locator("table.table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("alex@example.com")
    no_page_scroll(page)
    shot(page, f"support-{width}-2-found-by-email")

    # by the phone as people write it locally, with other spacing, and internationally
    for term in ("0412555019", "+61 412 555 019"):
        page.locator("#id_q").fill(term)
        page.locator("#id_q").press("Enter")
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("alex@example.com")
    shot(page, f"support-{width}-3-found-by-phone")

    # opens it on the portal's submission page and redelivers
    rows.first.locator("a").first.click()
    expect(page).to_have_url(f"{base}/submissions/{failed.public_id}/")
    expect(page.get_by_text("Braze refused the request as invalid (400)").first).to_be_visible()
    no_page_scroll(page)
    page.click("button:has-text('Redeliver')")
    expect(page.get_by_text("queued for delivery again")).to_be_visible()
    no_page_scroll(page)
    shot(page, f"support-{width}-4-redelivered")
    failed.refresh_from_db()
    assert failed.status == SubmissionStatus.DELIVERED  # django-q2 runs in sync mode in tests
    assert len(braze_accepts) == 1
    print(f"\njourney (c) at {width} px: {time.monotonic() - started:.1f} s")
    context.close()


@pytest.mark.parametrize("width", [1366, 390])
def test_the_dashboard_charts_two_days_and_a_month(live_server, browser,  # noqa: F811
                                                   width: int) -> None:
    # given: a day and a half of entries, most delivered within seconds, a few failed
    hub = demo_hub()
    now = timezone.now()
    rows = []
    for back in range(36 * 4):
        at = now - dt.timedelta(minutes=15 * back + 1)
        status = SubmissionStatus.FAILED if back % 17 == 0 else SubmissionStatus.DELIVERED
        delivered = at + dt.timedelta(seconds=1 + back % 9) if status == "delivered" else None
        rows.append(Submission(hub=hub, komo_id=f"c{back}", event="CompetitionEntrySuccess",
                               payload={}, received_at=at, status=status,
                               delivered_at=delivered))
    Submission.objects.bulk_create(rows)
    hub_stats_refresh()  # the worker's minute tick
    user = get_user_model().objects.create_user("chart-viewer", password=PASSWORD, is_staff=True)
    HubMembership.objects.create(user=user, hub=hub, role=HubRole.EDITOR)
    context = browser.new_context(viewport={"width": width, "height": 900}, locale="en-GB")
    page = context.new_page()
    log_in(page, live_server.url, user.username)
    # when
    page.goto(f"{live_server.url}/hubs/{hub.slug}/")
    # then
    charts = page.locator("[data-testid=charts]")
    expect(charts.locator("svg")).to_have_count(3)
    assert charts.locator("rect.chart__s--delivered").count() > 30
    no_page_scroll(page)
    charts.screenshot(path=str(ARTIFACTS / f"charts-{width}-48h.png"))
    charts.locator("summary").first.click()
    expect(charts.locator("table").first).to_be_visible()
    no_page_scroll(page)
    page.click("a:has-text('30 days')")
    expect(page.locator("a[aria-current=true]")).to_have_text("30 days")
    no_page_scroll(page)
    page.locator("[data-testid=charts]").screenshot(path=str(ARTIFACTS / f"charts-{width}-30d.png"))
    shot(page, f"dashboard-{width}")
    context.close()

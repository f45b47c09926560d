"""The backfill pages: upload, choices, preview, start, progress, report, pause/resume/cancel."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from integrations.models import Backfill, BackfillStatus, Hub, HubRole, Submission
from tests.test_backfill import csv_bytes, rows
from tests.test_views import member


@pytest.fixture
def var_dir(tmp_path, settings):
    settings.VAR_DIR = tmp_path
    return tmp_path


def upload(client, hub: Hub, data: bytes, name: str = "export.csv"):
    url = reverse("integrations:backfill_list", args=[hub.slug])
    return client.post(url, {"file": SimpleUploadedFile(name, data, "text/csv")})


def choices(backfill: Backfill, **changes) -> dict[str, str]:
    data = {
        "event": "CompetitionEntrySuccess", "id_column": backfill.id_column,
        "time_column": backfill.time_column, "time_format": "iso",
        **{f"column_{i}": backfill.columns[c] for i, c in enumerate(backfill.header)},
    }  # fmt: skip
    data.update(changes)
    return data


def detail_url(backfill: Backfill, suffix: str = "") -> str:
    url = reverse("integrations:backfill_detail", args=[backfill.hub.slug, backfill.public_id])
    return url + suffix


def test_upload_shows_header_first_rows_and_auto_matched_columns(client, make_hub, var_dir):
    hub, _ = make_hub(active=False)
    member(client, hub)

    response = upload(client, hub, csv_bytes(rows(7)))

    backfill = Backfill.objects.get()
    assert response.status_code == 302 and response.url == detail_url(backfill)
    page = client.get(detail_url(backfill)).content.decode()
    assert "Entered At" in page and "person0@example.com" in page  # header and first rows
    assert 'name="column_2" value="first_name"' in page  # First Name
    assert 'name="column_4" value="postcode"' in page  # Post-code
    assert backfill.id_column == "Entry ID" and backfill.time_column == "Entered At"
    assert backfill.started_by == "marketer"


def test_preview_shows_the_braze_request_of_the_first_rows(client, make_hub, var_dir):
    hub, _ = make_hub(active=False)
    member(client, hub)
    upload(client, hub, csv_bytes(rows(5)))
    backfill = Backfill.objects.get()

    response = client.post(detail_url(backfill), {**choices(backfill), "action": "preview"})

    page = response.content.decode()
    assert response.status_code == 200
    assert page.count('data-testid="braze-body"') == 3
    assert "person0@example.com" in page and "&quot;alias_name&quot;" in page
    assert not Submission.objects.exists()  # a preview stores nothing


def test_start_then_progress_json_and_actions(client, make_hub, var_dir):
    hub, _ = make_hub(active=False)
    member(client, hub)
    records = rows(30)
    records[3][5] = "later"
    upload(client, hub, csv_bytes(records))
    backfill = Backfill.objects.get()

    response = client.post(detail_url(backfill), {**choices(backfill), "action": "start"})

    assert response.status_code == 302
    backfill.refresh_from_db()
    assert backfill.status == BackfillStatus.RUNNING and backfill.imported_at  # (tasks run at once)
    progress = client.get(detail_url(backfill, "progress.json")).json()
    assert progress | {"time_left": ""} == progress | {
        "read": 30, "queued": 29, "pending": 29, "skipped": 1, "bad": 1, "delivered": 0,
        "file_percent": 100, "percent": 0, "active": True, "time_left": "",
    }  # fmt: skip
    page = client.get(detail_url(backfill)).content.decode()
    assert "<progress" in page and "backfill.js" in page
    report = client.get(detail_url(backfill, "unreadable-rows.csv"))
    assert b"".join(report.streaming_content).decode().splitlines() == [
        "row,line,reason", "4,5,The time cannot be read with the format “iso”."
    ]

    client.post(detail_url(backfill, "pause/"))
    assert Backfill.objects.get().status == BackfillStatus.PAUSED
    client.post(detail_url(backfill, "resume/"))
    assert Backfill.objects.get().status == BackfillStatus.RUNNING
    client.post(detail_url(backfill, "cancel/"))
    backfill.refresh_from_db()
    assert backfill.status == BackfillStatus.CANCELLED and backfill.rows_removed == 29
    assert client.get(detail_url(backfill, "progress.json")).json()["removed"] == 29


def test_a_file_that_is_not_csv_is_a_400_naming_the_problem(client, make_hub, var_dir):
    hub, _ = make_hub()
    member(client, hub)

    response = upload(client, hub, b"\x00\x01\x02binary", name="photo.csv")

    assert response.status_code == 400
    assert "not text" in response.content.decode()
    assert not Backfill.objects.exists()


def test_wrong_choices_are_a_400_naming_the_problem(client, make_hub, var_dir):
    hub, _ = make_hub()
    member(client, hub)
    upload(client, hub, csv_bytes(rows(2)))
    backfill = Backfill.objects.get()

    response = client.post(detail_url(backfill), {**choices(backfill, time_column="Nope")})

    assert response.status_code == 400
    assert "Nope" in response.content.decode()  # "Select a valid choice. Nope is not one …"


def test_viewers_see_backfills_but_cannot_upload_or_steer(client, make_hub, var_dir):
    hub, _ = make_hub(active=False)
    member(client, hub, role=HubRole.VIEWER, username="support")

    assert client.get(reverse("integrations:backfill_list", args=[hub.slug])).status_code == 200
    assert upload(client, hub, csv_bytes(rows(2))).status_code == 403
    assert not Backfill.objects.exists()


def test_other_hubs_backfills_are_not_found(client, make_hub, var_dir):
    hub, _ = make_hub(active=False)
    other, _ = make_hub(slug="other-hub", active=False)
    member(client, hub)
    upload(client, hub, csv_bytes(rows(2)))
    backfill = Backfill.objects.get()
    url = reverse("integrations:backfill_detail", args=[other.slug, backfill.public_id])

    assert client.get(url).status_code == 404

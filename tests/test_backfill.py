"""Backfills from CSV exports: reading (dialects, encodings, bad rows), idempotence, the command,
pause/resume/cancel, and profiles built from the rows' own times."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from integrations import backfill_csv
from integrations.backfill_csv import CsvError
from integrations.models import Backfill, BackfillStatus, Hub, Submission, SubmissionStatus
from integrations.services import backfill as service
from integrations.services.delivery import delivery_run, submissions_claim
from integrations.services.engagement import mapping_contexts
from integrations.services.intake import submission_receive
from tests.conftest import komo_entry

HEADER = ["Entry ID", "Email", "First Name", "Mobile", "Post-code", "Entered At"]


def rows(count: int, *, start: int = 0) -> list[list[str]]:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        [f"e{n}", f"person{n}@example.com", f"Name {n}", "0412 555 019", "3056",
         (base + timedelta(minutes=n)).strftime("%Y-%m-%dT%H:%M:%SZ")]
        for n in range(start, start + count)
    ]  # fmt: skip


def csv_bytes(records: list[list[str]], *, delimiter: str = ",", bom: bool = False) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(HEADER)
    writer.writerows(records)
    data = out.getvalue().encode()
    return (b"\xef\xbb\xbf" + data) if bom else data


@pytest.fixture
def var_dir(tmp_path, settings):
    settings.VAR_DIR = tmp_path
    return tmp_path


def upload(hub, data: bytes, **choices) -> Backfill:
    backfill = service.backfill_upload(hub=hub, chunks=[data], file_name="export.csv")
    service.backfill_configure(
        backfill, columns=choices.pop("columns", backfill.columns),
        event=choices.pop("event", "CompetitionEntrySuccess"),
        id_column=choices.pop("id_column", backfill.id_column),
        time_column=choices.pop("time_column", backfill.time_column),
        time_format=choices.pop("time_format", "iso"),
    )  # fmt: skip
    return backfill


def run(backfill: Backfill) -> Backfill:
    service.backfill_start(backfill, enqueue=False)
    return service.backfill_import(backfill_id=backfill.pk, run_seconds=None)


# --- reading the file ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("delimiter", "bom"), [(",", False), (",", True), (";", False), (";", True), ("\t", False)]
)
def test_utf8_with_or_without_bom_comma_or_semicolon(make_hub, var_dir, delimiter, bom):
    hub, _ = make_hub()
    data = csv_bytes([["e1", "zoë@example.com", "Zoë", "", "3056", "2026-01-02T03:04:05Z"]],
                     delimiter=delimiter, bom=bom)  # fmt: skip

    backfill = run(upload(hub, data))

    assert backfill.header == HEADER  # the BOM is not part of the first column's name
    assert backfill.delimiter == delimiter
    [submission] = Submission.objects.filter(backfill=backfill)
    assert submission.payload["first_name"] == "Zoë"
    assert submission.payload["email"] == "zoë@example.com"
    assert submission.komo_id == "e1"
    assert submission.payload["timestamp"] == "2026-01-02T03:04:05.000Z"


def test_quoted_fields_keep_separators_and_newlines(make_hub, var_dir):
    hub, _ = make_hub()
    data = (
        b'Entry ID;Email;First Name;Answer;Entered At\r\n'
        b'e1;a@example.com;"Smith; Jo";"line one\nline two; still ""quoted""";2026-01-02\r\n'
        b'e2;b@example.com;Ann;plain;2026-01-03\r\n'
    )

    backfill = run(upload(hub, data))

    assert backfill.rows_read == 2 and backfill.rows_queued == 2 and backfill.rows_bad == 0
    first = Submission.objects.get(backfill=backfill, komo_id="e1")
    assert first.payload["first_name"] == "Smith; Jo"
    assert first.payload["answer"] == 'line one\nline two; still "quoted"'


def test_columns_are_matched_to_komo_keys_ignoring_case_and_separators():
    header = ["Entry ID", "E-Mail", "FIRST NAME", "first-name2", "Post code", "Mobile"]

    columns = backfill_csv.columns_auto(header, [*backfill_csv.KOMO_KEYS, "postcode"])

    assert columns == {
        "Entry ID": "entry_id", "E-Mail": "email", "FIRST NAME": "first_name",
        "first-name2": "first_name2", "Post code": "postcode", "Mobile": "mobile",
    }  # fmt: skip


def test_an_empty_file_or_a_duplicate_header_is_refused_with_a_reason(make_hub, var_dir):
    hub, _ = make_hub()
    with pytest.raises(CsvError, match="empty"):
        service.backfill_upload(hub=hub, chunks=[b""], file_name="x.csv")
    with pytest.raises(CsvError, match="same name"):
        service.backfill_upload(hub=hub, chunks=[b"a,a\n1,2\n"], file_name="x.csv")
    assert not list((var_dir / "backfills").iterdir())  # nothing kept of a refused file


def test_time_formats():
    assert backfill_csv.time_parse("14/03/2026 09:26", "%d/%m/%Y %H:%M") == datetime(
        2026, 3, 14, 9, 26, tzinfo=UTC
    )
    assert backfill_csv.time_parse("1773480413", "unix").year == 2026
    assert backfill_csv.time_parse("1773480413000", "unix_ms").year == 2026
    assert backfill_csv.time_parse("2026-03-14T19:26:53+10:00", "iso").hour == 9
    with pytest.raises(backfill_csv.RowError):
        backfill_csv.time_parse("yesterday", "iso")


# --- bad rows, idempotence ----------------------------------------------------------------------


def test_bad_rows_are_reported_with_row_number_and_reason_and_the_rest_goes_on(make_hub, var_dir):
    hub, _ = make_hub()
    records = rows(5)
    records[1][5] = "not a time"  # row 2
    records[2][1] = ""  # row 3: no identity
    records[3] = records[3][:4]  # row 4: too few columns
    data = csv_bytes(records) + b"e9,x@example.com,Bad,\xff\xfe,3056,2026-01-01T00:00:00Z\r\n"

    backfill = run(upload(hub, data))

    assert (backfill.rows_read, backfill.rows_queued, backfill.rows_bad) == (6, 2, 4)
    with service.report_path(backfill).open(encoding="utf-8") as report:
        reported = list(csv.DictReader(report))
    assert [(r["row"], r["line"]) for r in reported] == [("2", "3"), ("3", "4"), ("4", "5"),
                                                          ("6", "7")]  # fmt: skip
    reasons = [r["reason"] for r in reported]
    assert "time cannot be read" in reasons[0]
    assert "No identity" in reasons[1]
    assert "4 columns, the header 6" in reasons[2]
    assert "not UTF-8" in reasons[3]
    assert "example.com" not in service.report_path(backfill).read_text()  # no personal data
    assert set(Submission.objects.values_list("komo_id", flat=True)) == {"e0", "e4"}


def test_importing_the_same_file_again_queues_nothing(make_hub, var_dir):
    hub, _ = make_hub()
    data = csv_bytes(rows(50))
    first = run(upload(hub, data))

    again = run(upload(hub, data))

    assert first.rows_queued == 50
    assert (again.rows_read, again.rows_queued, again.rows_duplicate) == (50, 0, 50)
    assert Submission.objects.filter(hub=hub).count() == 50


def test_derived_ids_are_stable_so_a_file_without_ids_is_idempotent_too(make_hub, var_dir):
    hub, _ = make_hub()
    data = csv_bytes(rows(20))
    first = run(upload(hub, data, id_column=""))

    again = run(upload(hub, data, id_column=""))

    assert first.rows_queued == 20 and again.rows_queued == 0 and again.rows_duplicate == 20
    ids = set(Submission.objects.values_list("komo_id", flat=True))
    assert len(ids) == 20 and all(i.startswith(backfill_csv.DERIVED_ID_PREFIX) for i in ids)


def test_rows_are_submissions_like_webhooks_marked_as_backfilled(make_hub, var_dir):
    hub, _ = make_hub(active=False)  # (nothing delivered: the rows stay as the import left them)
    live = submission_receive(hub=hub, payload=komo_entry()).submission

    backfill = run(upload(hub, csv_bytes(rows(3))))

    row = Submission.objects.get(backfill=backfill, komo_id="e0")
    assert live.backfill_id is None
    assert row.status == SubmissionStatus.PENDING
    assert row.event == "CompetitionEntrySuccess"
    assert row.email_hash and row.phone_hash  # found by support search like any submission
    assert row.next_attempt_at == row.komo_timestamp  # a backlog goes oldest first


# --- delivery: live first, pause/resume/cancel --------------------------------------------------


def test_live_submissions_are_claimed_before_an_older_backfilled_backlog(make_hub, var_dir):
    hub, _ = make_hub(active=False)
    run(upload(hub, csv_bytes(rows(100))))
    live = submission_receive(hub=hub, payload=komo_entry()).submission

    claimed, _token = submissions_claim(hub_id=hub.pk, limit=75)

    assert claimed[0].pk == live.pk
    assert len(claimed) == 75  # the request is filled up with backfilled rows
    assert all(s.backfill_id for s in claimed[1:])


def test_pause_resume_and_cancel(make_hub, var_dir, sandbox):
    hub, _ = make_hub(endpoint=sandbox.url, active=False)
    backfill = run(upload(hub, csv_bytes(rows(200))))

    assert service.backfill_pause(backfill)
    Hub.objects.filter(pk=hub.pk).update(active=True)
    delivery_run(hub_id=hub.pk, run_seconds=5)
    assert sandbox.requests() == []  # paused: nothing of it is due
    live = submission_receive(hub=hub, payload=komo_entry()).submission
    delivery_run(hub_id=hub.pk, run_seconds=5)
    live.refresh_from_db()
    assert live.status == SubmissionStatus.DELIVERED  # live traffic goes on meanwhile

    Hub.objects.filter(pk=hub.pk).update(active=False)  # (tests run tasks at once: hold them)
    assert service.backfill_resume(backfill)
    claimed, token = submissions_claim(hub_id=hub.pk, limit=75)
    assert len(claimed) == 75
    # (the lease stands, like a worker in the middle of a request)

    removed = service.backfill_cancel(backfill)

    backfill.refresh_from_db()
    assert backfill.status == BackfillStatus.CANCELLED
    assert removed == 125 == backfill.rows_removed  # the 75 in a request stay until it ends
    Submission.objects.filter(claim_token=token).update(claimed_until=None, claim_token=None)
    assert service.cancelled_sweep() == 75
    backfill.refresh_from_db()
    assert backfill.rows_removed == 200
    assert not Submission.objects.filter(backfill=backfill).exists()


def test_a_finished_backfill_is_settled(make_hub, var_dir, sandbox):
    hub, _ = make_hub(endpoint=sandbox.url)
    backfill = run(upload(hub, csv_bytes(rows(80))))

    delivery_run(hub_id=hub.pk, run_seconds=10)
    backfill = service.backfill_settle(backfill)

    assert backfill.status == BackfillStatus.FINISHED
    assert service.backfill_counts(backfill)[SubmissionStatus.DELIVERED] == 80


# --- profiles from the rows' own times ----------------------------------------------------------


def test_a_backfill_after_live_traffic_does_not_set_last_engaged_back_or_count_twice(
    make_hub, var_dir, sandbox
):
    engagement = {"first_engaged_at": "first_at", "last_engaged_at": "last_at", "entries": "n"}
    hub, _ = make_hub(endpoint=sandbox.url, engagement_attributes=engagement)
    live_body = komo_entry(email="person1@example.com", timestamp="2026-06-01T00:00:00Z")
    submission_receive(hub=hub, payload=live_body)
    delivery_run(hub_id=hub.pk, run_seconds=5)
    older = rows(3)  # person0..2, January 2026: older than the live entry
    older.append(["e1", "person1@example.com", "Again", "", "3056", "2026-01-01T00:01:00Z"])

    run(upload(hub, csv_bytes(older)))
    delivery_run(hub_id=hub.pk, run_seconds=5)

    sent = [obj for r in sandbox.requests() for obj in r["body"].get("attributes", [])]
    person1 = [obj for obj in sent if obj.get("user_alias", {}).get("alias_name")
               == "person1@example.com"]  # fmt: skip
    live_obj, backfilled = person1[0], person1[1:]
    assert live_obj["last_at"] == "2026-06-01T00:00:00.000Z"
    assert len(backfilled) == 1  # the same row twice in the file is one entry
    assert "last_at" not in backfilled[0]  # older than what Braze has: not set back
    assert backfilled[0]["first_at"] == "2026-01-01T00:01:00.000Z"  # the real first
    assert backfilled[0]["n"] == {"inc": 1}


def test_mapping_contexts_follow_the_rows_times_not_their_order(make_hub):
    hub, _ = make_hub(engagement_attributes={"last_engaged_at": "last_at"})
    newer = submission_receive(hub=hub, payload=komo_entry(
        email="a@example.com", timestamp="2026-05-01T00:00:00Z")).submission  # fmt: skip
    older = submission_receive(hub=hub, payload=komo_entry(
        email="a@example.com", timestamp="2026-02-01T00:00:00Z")).submission  # fmt: skip

    contexts = mapping_contexts(hub=hub, submissions=[newer, older])

    assert contexts[newer.pk].latest_engagement and not contexts[older.pk].latest_engagement


# --- the command --------------------------------------------------------------------------------


def test_command_draws_progress_and_prints_a_summary(make_hub, tmp_path, var_dir):
    hub, _ = make_hub()
    path = tmp_path / "export.csv"
    records = rows(12)
    records[4][5] = "?"
    path.write_bytes(csv_bytes(records))
    out = io.StringIO()

    call_command("hub_backfill", hub.slug, str(path), "--id-column", "Entry ID",
                 "--time-column", "Entered At", "--map", "Post-code=postcode", "--progress",
                 stdout=out)  # fmt: skip

    text = out.getvalue()
    assert "\r[" + "#" * 30 + "] 100%  read 12  queued 11  skipped 1" in text
    assert "12 rows read in" in text
    assert "11 queued, 0 already there, 1 unreadable." in text
    assert Submission.objects.filter(hub=hub).count() == 11
    assert Submission.objects.get(komo_id="e0").payload["postcode"] == "3056"


def test_command_dry_run_stores_nothing(make_hub, tmp_path, var_dir):
    hub, _ = make_hub()
    path = tmp_path / "export.csv"
    path.write_bytes(csv_bytes(rows(5)))
    out = io.StringIO()

    call_command("hub_backfill", hub.slug, str(path), "--dry-run", stdout=out)

    assert "5 would be queued" in out.getvalue()
    assert not Submission.objects.exists() and not Backfill.objects.exists()


def test_command_refuses_an_unknown_column_with_the_header(make_hub, tmp_path, var_dir):
    hub, _ = make_hub()
    path = tmp_path / "export.csv"
    path.write_bytes(csv_bytes(rows(1)))

    with pytest.raises(CommandError, match="no such column"):
        call_command("hub_backfill", hub.slug, str(path), "--map", "Nope=x", stdout=io.StringIO())
    assert not Backfill.objects.exists()



# --- bounded memory -----------------------------------------------------------------------------


def test_a_100000_row_file_is_streamed_in_bounded_memory(make_hub, tmp_path, var_dir):
    import tracemalloc

    hub, _ = make_hub(active=False)
    path = tmp_path / "big.csv"
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(HEADER)
        for start in range(0, 100_000, 10_000):
            writer.writerows(rows(10_000, start=start))
    size_mb = path.stat().st_size / 1024**2
    backfill = service.backfill_from_path(hub=hub, path=path)
    service.backfill_start(backfill, enqueue=False)

    tracemalloc.start()
    try:
        backfill = service.backfill_import(backfill_id=backfill.pk, run_seconds=None)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert (backfill.rows_read, backfill.rows_queued) == (100_000, 100_000)
    assert Submission.objects.filter(backfill=backfill).count() == 100_000
    # Holding the file's 100,000 rows (as bodies, encrypted, with their hashes) would take well
    # over 100 MB; a stream holds one batch and a bounded cache of recent people's hashes.
    assert size_mb > 7
    assert peak / 1024**2 < 25, f"peak {peak / 1024**2:.1f} MB"


def test_an_entry_a_webhook_already_brought_under_another_id_is_not_queued_again(
    make_hub, var_dir
):
    hub, _ = make_hub(active=False)
    submission_receive(hub=hub, payload=komo_entry(
        id="komo-webhook-id", email="Person1@Example.com", timestamp="2026-01-01T00:01:00.250Z"
    ))  # fmt: skip
    records = rows(3)  # person1's row is the same entry, time to the second, another id

    backfill = run(upload(hub, csv_bytes(records)))

    assert (backfill.rows_queued, backfill.rows_duplicate) == (2, 1)
    assert not Submission.objects.filter(backfill=backfill, komo_id="e1").exists()


def test_the_dashboards_hourly_rows_count_backfilled_apart_from_live(make_hub, var_dir, sandbox):
    from integrations.models_stats import HubHourlyStats
    from integrations.services.hub_stats import hour_floor, hub_stats_recompute

    hub, _ = make_hub(endpoint=sandbox.url)
    submission_receive(hub=hub, payload=komo_entry())
    run(upload(hub, csv_bytes(rows(5))))
    delivery_run(hub_id=hub.pk, run_seconds=5)
    now = timezone.now()
    start = hour_floor(now)

    hub_stats_recompute(hub_id=hub.pk, start=start, end=start + timedelta(hours=1), now=now)

    counts = {r.source: (r.received, r.delivered) for r in HubHourlyStats.objects.filter(hub=hub)}
    assert counts == {"live": (1, 1), "backfill": (5, 5)}

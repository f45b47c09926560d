"""Backfills: a hub's history from a CSV export, read into submissions of the hub.

Upload (``backfill_upload``) stores the file under ``VAR_DIR/backfills/`` and reads its header;
the person's choices (``backfill_configure``) say how a row becomes a Komo body
(``backfill_csv``); ``backfill_start`` hands the file to a django-q2 task (``backfill_import``),
which the command line runs in its own process instead.

The import streams: a batch of rows is read, checked exactly like a webhook body
(``intake.payload_check``, the identity), stored with one ``COPY`` + ``INSERT … ON CONFLICT DO
NOTHING`` (``RowsWriter``), and forgotten, so memory stays flat whatever the file's size. Rows are
submissions like any other, marked with ``backfill``; a second import of the same file finds
every (hub, Komo id) taken and queues nothing. Rows that cannot be read go to the report (row
number and reason, never a value) and the rest goes on. A backfilled row's ``next_attempt_at``
is its own time, so delivery takes a backlog oldest first; a paused backfill's rows have none
(they are not due) until it resumes.
"""

from __future__ import annotations

import csv
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection, connections, transaction
from django.db.models import Count, F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from integrations import backfill_csv
from integrations.backfill_csv import CsvError, RowError, RowPlan
from integrations.models import (
    Backfill,
    BackfillStatus,
    Hub,
    Submission,
    SubmissionStatus,
)
from integrations.services.dispatch import hub_delivery_trigger
from integrations.services.engagement import person_column
from integrations.services.insert_many import RowsWriter
from integrations.services.intake import IntakeError, payload_check, person_hash_columns

log = logging.getLogger(__name__)

BATCH_ROWS = 5_000
# One import task reads for this long, then continues in a new task (django-q2's timeout).
IMPORT_RUN_SECONDS = 60.0
# Person hashes of recent identities (the same person's entries hash once): bounded.
PERSON_CACHE_SIZE = 10_000
ID_GUESSES = ("id", "entry_id", "competition_entry_id", "submission_id")
TIME_GUESSES = ("timestamp", "time", "entered_at", "created_at", "submitted_at", "entry_date",
                "date", "created", "submitted")  # fmt: skip
REPORT_FIELDS = ("row", "line", "reason")
_GIVEN = (
    "hub_id", "public_id", "komo_id", "event", "komo_timestamp", "payload", "received_at",
    "status", "next_attempt_at", "email_hash", "email_local_hash", "phone_hash",
    "external_id_hash", "backfill_id",
)  # fmt: skip


def backfill_dir() -> Path:
    directory = Path(settings.VAR_DIR) / "backfills"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def file_path(backfill: Backfill) -> Path:
    return backfill_dir() / backfill.stored_name


def report_path(backfill: Backfill) -> Path:
    return backfill_dir() / f"{backfill.public_id}-report.csv"


def known_keys(hub: Hub) -> list[str]:
    """Komo keys a column may be matched to: Komo's own and the hub's mapped fields."""
    keys = list(backfill_csv.KOMO_KEYS)
    for field in [hub.identity_field, *hub.mappings.values_list("komo_field", flat=True)]:
        if field and field not in keys:
            keys.append(field)
    return keys


# --- upload and choices --------------------------------------------------------------------------


def backfill_upload(
    *, hub: Hub, chunks: Iterable[bytes], file_name: str, user: Any = None
) -> Backfill:
    """Store an uploaded CSV (streamed to disk) and read its header. Raises ``CsvError``."""
    public_id = uuid.uuid4()
    stored_name = f"{public_id}.csv"
    path = backfill_dir() / stored_name
    size = 0
    with path.open("wb") as out:
        for chunk in chunks:
            out.write(chunk)
            size += len(chunk)
    try:
        with path.open("rb") as binary:
            reader = backfill_csv.reader_open(binary)
    except CsvError:
        path.unlink(missing_ok=True)
        raise
    header = reader.header
    return Backfill.objects.create(
        hub=hub,
        public_id=public_id,
        user=user if getattr(user, "pk", None) else None,
        started_by=_username(user),
        file_name=Path(file_name).name[:255] or stored_name,
        file_size=size,
        stored_name=stored_name,
        delimiter=reader.delimiter,
        header=header,
        columns=backfill_csv.columns_auto(header, known_keys(hub)),
        id_column=backfill_csv.column_guess(header, *ID_GUESSES),
        time_column=backfill_csv.column_guess(header, *TIME_GUESSES),
    )


def backfill_from_path(*, hub: Hub, path: Path) -> Backfill:
    """A backfill reading a file where it is (the command line: no copy of a large file).
    Raises ``CsvError`` (and ``OSError`` for a file that cannot be opened)."""
    path = path.resolve()
    with path.open("rb") as binary:
        reader = backfill_csv.reader_open(binary)
    header = reader.header
    return Backfill.objects.create(
        hub=hub,
        started_by=_username(None),
        file_name=path.name[:255],
        file_size=path.stat().st_size,
        stored_name=str(path),
        delimiter=reader.delimiter,
        header=header,
        columns=backfill_csv.columns_auto(header, known_keys(hub)),
        id_column=backfill_csv.column_guess(header, *ID_GUESSES),
        time_column=backfill_csv.column_guess(header, *TIME_GUESSES),
    )


def _username(user: Any) -> str:
    return user.get_username() if getattr(user, "pk", None) else "command"


def backfill_configure(
    backfill: Backfill, *, columns: dict[str, str], event: str, id_column: str,
    time_column: str, time_format: str,
) -> Backfill:  # fmt: skip
    """Save how rows become bodies. Raises ``CsvError`` when the choices do not fit the file."""
    if backfill.status != BackfillStatus.DRAFT:
        raise CsvError(_("This backfill has started; its choices can no longer change."))
    columns = {c: (columns.get(c) or "").strip() for c in backfill.header}
    backfill_csv.row_plan(
        backfill.header, columns=columns, event=event, id_column=id_column,
        time_column=time_column, time_format=time_format,
    )  # fmt: skip
    if not event.strip() and "event" not in columns.values():
        raise CsvError(_("Choose the event kind the rows represent."))
    backfill.columns, backfill.event = columns, event.strip()
    backfill.id_column, backfill.time_column = id_column, time_column
    backfill.time_format = time_format or "iso"
    backfill.save(update_fields=["columns", "event", "id_column", "time_column", "time_format"])
    return backfill


def plan_of(backfill: Backfill) -> RowPlan:
    return backfill_csv.row_plan(
        backfill.header, columns=backfill.columns, event=backfill.event,
        id_column=backfill.id_column, time_column=backfill.time_column,
        time_format=backfill.time_format,
    )  # fmt: skip


def first_rows(backfill: Backfill, count: int = 5) -> list[tuple[int, list[str]]]:
    """The file's first data rows (line, values), for the person to see what was read."""
    rows = []
    with file_path(backfill).open("rb") as binary:
        reader = backfill_csv.reader_open(binary, delimiter=backfill.delimiter)
        for line, values in reader.rows:
            rows.append((line, values))
            if len(rows) >= count:
                break
    return rows


@dataclass(frozen=True)
class RowPreview:
    row: int
    body: dict[str, Any] | None
    reason: str


def row_check(hub: Hub, plan: RowPlan, values: list[str]) -> tuple[dict[str, Any], datetime, str]:
    """One row as a body, checked like a webhook body plus the hub's identity; its time and
    its JSON text. Raises ``RowError``."""
    body, moment = backfill_csv.row_body(plan, values)
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: bytes that were not UTF-8
            raise RowError(_("The row holds bytes that are not UTF-8 text.")) from None
    try:
        payload_check(body, text=text)
    except IntakeError as problem:
        raise RowError(problem.message) from None
    identity = body.get(hub.identity_field)
    if identity is None or not str(identity).strip():
        raise RowError(
            _("No identity: the column mapped to “%(field)s” is empty or missing.")
            % {"field": hub.identity_field}
        )
    return body, moment, text


def rows_preview(backfill: Backfill, count: int = 3) -> list[RowPreview]:
    """The first rows as the bodies the import would store (or why it would skip them)."""
    hub, plan = backfill.hub, plan_of(backfill)
    previews = []
    for number, (_line, values) in enumerate(first_rows(backfill, count), start=1):
        try:
            body, _moment, _text = row_check(hub, plan, values)
        except RowError as problem:
            previews.append(RowPreview(row=number, body=None, reason=problem.reason))
            continue
        previews.append(RowPreview(row=number, body=body, reason=""))
    return previews


# --- start, pause, resume, cancel ----------------------------------------------------------------


def backfill_start(backfill: Backfill, *, user: Any = None, enqueue: bool = True) -> Backfill:
    """Start reading the file (a task, unless the caller reads it itself: ``enqueue=False``)."""
    updated = Backfill.objects.filter(pk=backfill.pk, status=BackfillStatus.DRAFT).update(
        status=BackfillStatus.RUNNING, started_at=timezone.now(),
        started_by=_username(user) if user is not None else F("started_by"),
        user=user if getattr(user, "pk", None) else F("user"),
    )  # fmt: skip
    backfill.refresh_from_db()
    if updated and enqueue:
        import_enqueue(backfill)
    return backfill


def import_enqueue(backfill: Backfill) -> None:
    from django_q.tasks import async_task

    async_task(
        "integrations.tasks.backfill_import", backfill.pk,
        task_name=f"backfill-import-{backfill.pk}"[:100],
    )  # fmt: skip


def backfill_pause(backfill: Backfill) -> bool:
    """Stop delivering (and reading) the backfill's rows until it resumes; live traffic goes on."""
    with transaction.atomic():
        updated = Backfill.objects.filter(pk=backfill.pk, status=BackfillStatus.RUNNING).update(
            status=BackfillStatus.PAUSED
        )
        if updated:
            _pending(backfill).update(next_attempt_at=None)
    backfill.refresh_from_db()
    return bool(updated)


def backfill_resume(backfill: Backfill) -> bool:
    with transaction.atomic():
        updated = Backfill.objects.filter(pk=backfill.pk, status=BackfillStatus.PAUSED).update(
            status=BackfillStatus.RUNNING
        )
        if updated:
            _pending(backfill).filter(next_attempt_at__isnull=True).update(
                next_attempt_at=F("komo_timestamp")
            )
    backfill.refresh_from_db()
    if updated:
        if backfill.imported_at is None:
            import_enqueue(backfill)
        hub_delivery_trigger(hub_id=backfill.hub_id)
    return bool(updated)


def backfill_cancel(backfill: Backfill) -> int:
    """Stop for good: rows not sent yet (waiting or held, not in a request now) are removed and
    counted; delivered and failed rows stay (they were sent). The number removed."""
    Backfill.objects.filter(
        pk=backfill.pk, status__in=(BackfillStatus.DRAFT, BackfillStatus.RUNNING,
                                    BackfillStatus.PAUSED),
    ).update(status=BackfillStatus.CANCELLED, finished_at=timezone.now())  # fmt: skip
    removed = cancelled_rows_remove(backfill)
    backfill.refresh_from_db()
    return removed


def cancelled_rows_remove(backfill: Backfill) -> int:
    """Remove a cancelled backfill's unsent rows that no delivery run holds (the sweep calls this
    again for rows that were in a request at the moment of the cancel)."""
    now = timezone.now()
    unsent = Submission.objects.filter(
        backfill=backfill, status__in=(SubmissionStatus.PENDING, SubmissionStatus.HELD,
                                       SubmissionStatus.IGNORED),
    ).filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))  # fmt: skip
    removed, _by_model = unsent.delete()
    removed_rows = _by_model.get(Submission._meta.label, 0)
    if removed_rows:
        Backfill.objects.filter(pk=backfill.pk).update(
            rows_removed=F("rows_removed") + removed_rows
        )
    return removed_rows


def cancelled_sweep() -> int:
    """Rows of recently cancelled backfills that were in flight when they were cancelled."""
    since = timezone.now() - timedelta(hours=1)
    recent = Backfill.objects.filter(status=BackfillStatus.CANCELLED, finished_at__gte=since)
    return sum(cancelled_rows_remove(backfill) for backfill in recent)


def _pending(backfill: Backfill):
    return Submission.objects.filter(backfill=backfill, status=SubmissionStatus.PENDING)


def backfill_settle(backfill: Backfill) -> Backfill:
    """A running backfill whose file is read and whose rows all left the queue is finished."""
    if (
        backfill.status == BackfillStatus.RUNNING
        and backfill.imported_at is not None
        and not _pending(backfill).exists()
    ):
        Backfill.objects.filter(pk=backfill.pk, status=BackfillStatus.RUNNING).update(
            status=BackfillStatus.FINISHED, finished_at=timezone.now()
        )
        backfill.refresh_from_db()
    return backfill


def backfill_counts(backfill: Backfill) -> dict[str, int]:
    """The backfill's submissions by status (one grouped query on its partial index)."""
    counts = dict.fromkeys(SubmissionStatus.values, 0)
    rows = (
        Submission.objects.filter(backfill=backfill)
        .values("status")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in rows:
        counts[row["status"]] = row["n"]
    return counts


# --- the import ----------------------------------------------------------------------------------


@dataclass
class ImportTotals:
    read: int = 0
    queued: int = 0
    duplicate: int = 0
    bad: int = 0


ProgressFn = Callable[[Backfill], None]


def backfill_import(
    *, backfill_id: int, run_seconds: float | None = IMPORT_RUN_SECONDS,
    progress: ProgressFn | None = None,
) -> Backfill:  # fmt: skip
    """Read the backfill's file from where the last run stopped, for up to ``run_seconds``
    (None: to the end), then continue in a new task. One reader per backfill at a time."""
    lock = f"backfill-import:{backfill_id}"
    if not cache.add(lock, 1, int((run_seconds or 3600) + 120)):
        return Backfill.objects.get(pk=backfill_id)
    try:
        backfill = Backfill.objects.select_related("hub").get(pk=backfill_id)
        if backfill.status not in (BackfillStatus.RUNNING, BackfillStatus.PAUSED) or (
            backfill.imported_at is not None
        ):
            return backfill
        done = _Importer(backfill, progress=progress).run(run_seconds)
    finally:
        cache.delete(lock)
    if not done:
        import_enqueue(backfill)
    backfill.refresh_from_db()
    return backfill


class _Importer:
    def __init__(self, backfill: Backfill, *, progress: ProgressFn | None) -> None:
        self.backfill = backfill
        self.hub = backfill.hub
        self.plan = plan_of(backfill)
        self.progress = progress
        self.delivered_events = set(self.hub.events or ())
        self.writer = RowsWriter(Submission, given=_GIVEN, unique=("hub", "komo_id"),
                                 prepared=("payload",))  # fmt: skip
        self.people: dict[tuple[str, ...], tuple[str, ...]] = {}
        self.paused = backfill.status == BackfillStatus.PAUSED
        self.report_rows: list[tuple[int, int, str]] = []
        self.now = timezone.now()
        column = person_column(self.hub.identity_type)
        hash_columns = ("email_hash", "email_local_hash", "phone_hash", "external_id_hash")
        self.person_at = hash_columns.index(column) if column else None
        # A hub backfilled before it went live (the common case) needs no look per batch.
        self.has_live = Submission.objects.filter(hub=self.hub, backfill__isnull=True).exists()
        # The payload field's own stored form (encrypted, compressed when long), as the webhook.
        self.seal = Submission._meta.get_field("payload").get_db_prep_json_text

    def run(self, run_seconds: float | None) -> bool:
        """True when the file has been read to its end (or the backfill was cancelled)."""
        backfill = self.backfill
        deadline = None if run_seconds is None else time.monotonic() + run_seconds
        skip = backfill.rows_read
        number = 0
        pending: Future | None = None
        threaded = not connection.in_atomic_block and connection.vendor == "postgresql"
        pool = ThreadPoolExecutor(max_workers=1) if threaded else None
        try:
            with file_path(backfill).open("rb") as binary:
                reader = backfill_csv.reader_open(binary, delimiter=backfill.delimiter)
                batch: list[tuple[tuple, tuple]] = []  # ((person, second, event), row)
                totals = ImportTotals()
                for line, values in reader.rows:
                    number += 1
                    if number <= skip:
                        continue
                    totals.read += 1
                    if not batch:
                        self.now = timezone.now()  # received_at: one moment per batch
                    self._row(number, line, values, batch, totals)
                    if totals.read >= BATCH_ROWS:
                        pending = self._flush(batch, totals, binary.tell(), pool, pending)
                        batch, totals = [], ImportTotals()
                        if self.backfill.status == BackfillStatus.CANCELLED:
                            return True
                        if deadline is not None and time.monotonic() > deadline:
                            self._wait(pending)
                            return False
                pending = self._flush(batch, totals, binary.tell(), pool, pending)
                self._wait(pending)
        except (OSError, CsvError) as problem:
            self._wait(pending)
            message = problem.message if isinstance(problem, CsvError) else _(
                "The stored file cannot be read."
            )
            Backfill.objects.filter(pk=backfill.pk).update(
                status=BackfillStatus.FAILED, error=message, finished_at=timezone.now()
            )
            return True
        finally:
            if pool is not None:
                pool.submit(connections.close_all).result()
                pool.shutdown()
        Backfill.objects.filter(pk=backfill.pk).update(imported_at=timezone.now())
        return True

    def _row(
        self, number: int, line: int, values: list[str], batch: list[tuple[tuple, tuple]],
        totals: ImportTotals,
    ) -> None:
        try:
            body, moment, text = row_check(self.hub, self.plan, values)
        except RowError as problem:
            totals.bad += 1
            self.report_rows.append((number, line, problem.reason))
            return
        event = body["event"]
        delivered = event in self.delivered_events
        now = self.now
        hashes = self._hashes(body)
        person = hashes[self.person_at] if self.person_at is not None else ""
        batch.append((
            (person, moment.replace(microsecond=0), event),
            self.writer.row((
                self.hub.pk, uuid.uuid4(), str(body["id"]).strip(), event, moment,
                self.seal(text), now,
                SubmissionStatus.PENDING if delivered else SubmissionStatus.IGNORED,
                (min(moment, now) if not self.paused else None) if delivered else None,
                *hashes, self.backfill.pk,
            )),
        ))  # fmt: skip

    def _hashes(self, body: dict[str, Any]) -> tuple[str, ...]:
        hub = self.hub
        key = (
            str(body.get(hub.identity_field, "")), str(body.get("email", "")),
            str(body.get("phone", "")), str(body.get("mobile", "")),
        )  # fmt: skip
        hashes = self.people.get(key)
        if hashes is None:
            if len(self.people) >= PERSON_CACHE_SIZE:
                self.people.clear()
            columns = person_hash_columns(hub, body)
            hashes = self.people[key] = (
                columns["email_hash"], columns["email_local_hash"], columns["phone_hash"],
                columns["external_id_hash"],
            )  # fmt: skip
        return hashes

    def _flush(
        self, batch: list[tuple[tuple, tuple]], totals: ImportTotals, position: int,
        pool: ThreadPoolExecutor | None, pending: Future | None,
    ) -> Future | None:  # fmt: skip
        """Write a batch (in the writer thread while the next one is read, on PostgreSQL) and
        count it; the status the person set is read back each batch."""
        self._wait(pending)
        report, self.report_rows = self.report_rows, []
        if pool is None:
            self._write_and_count(batch, totals, position, report)
            return None
        return pool.submit(self._write_and_count, batch, totals, position, report)

    def _write_and_count(self, batch, totals, position, report) -> None:
        rows = self._without_live_entries(batch)
        self._count(totals, self.writer.write(rows), position, report)

    def _without_live_entries(self, batch: list[tuple[tuple, tuple]]) -> list[tuple]:
        """The batch's rows, less those a webhook already brought under another id: the same
        person, event and time (to the second). Their entries are already counted."""
        column = person_column(self.hub.identity_type)
        people = {key[0] for key, _row in batch if key[0]}
        if column is None or not people or not self.has_live:
            return [row for _key, row in batch]
        live = {
            (person, moment.replace(microsecond=0), event)
            for person, moment, event in Submission.objects.filter(
                hub=self.hub, backfill__isnull=True, **{f"{column}__in": people}
            ).values_list(column, "komo_timestamp", "event").order_by()
            if moment is not None
        }  # fmt: skip
        return [row for key, row in batch if key not in live]

    def _wait(self, pending: Future | None) -> None:
        if pending is not None:
            pending.result()
        self.backfill.refresh_from_db(fields=["status", "rows_read", "rows_queued",
                                              "rows_duplicate", "rows_bad", "bytes_read"])
        status = self.backfill.status
        was_paused, self.paused = self.paused, status == BackfillStatus.PAUSED
        if was_paused and not self.paused:  # resumed while a batch was being read
            _pending(self.backfill).filter(next_attempt_at__isnull=True).update(
                next_attempt_at=F("komo_timestamp")
            )

    def _count(
        self, totals: ImportTotals, queued: int, position: int, report: list[tuple[int, int, str]]
    ) -> None:
        stored = totals.read - totals.bad
        if report:
            self._report(report)
        Backfill.objects.filter(pk=self.backfill.pk).update(
            rows_read=F("rows_read") + totals.read,
            rows_queued=F("rows_queued") + queued,
            rows_duplicate=F("rows_duplicate") + stored - queued,
            rows_bad=F("rows_bad") + totals.bad,
            bytes_read=position,
        )
        if queued and not self.paused and self.hub.active:
            hub_delivery_trigger(hub_id=self.hub.pk)  # coalesced: one flag per hub
        if self.progress is not None:
            self.backfill.refresh_from_db()
            self.progress(self.backfill)

    def _report(self, rows: list[tuple[int, int, str]]) -> None:
        path = report_path(self.backfill)
        new = not path.exists()
        with path.open("a", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            if new:
                writer.writerow(REPORT_FIELDS)
            writer.writerows(rows)

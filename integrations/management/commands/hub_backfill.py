"""``manage.py hub_backfill SLUG FILE.csv``: a hub's history from a CSV export (docs/backfill.md).

Reads the file where it is, in this process, with a progress bar on a terminal (rows read,
queued, skipped) and a summary line; delivery goes on in the worker cluster as for any
submission, live traffic first. ``--dry-run`` reads and checks every row and stores nothing.
"""

from __future__ import annotations

import sys
import time
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from integrations import backfill_csv
from integrations.backfill_csv import CsvError, RowError
from integrations.models import Backfill, Hub
from integrations.services import backfill as service

BAR_WIDTH = 30
REDRAW_SECONDS = 0.2
SHOWN_BAD_ROWS = 20


class Command(BaseCommand):
    @property
    def help(self) -> str:  # type: ignore[override]
        return _(
            "Backfill a hub's history from a CSV export: every row becomes a submission of the "
            "hub, delivered after live traffic. Importing the same file again queues nothing."
        )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("file")
        parser.add_argument("--event", default="CompetitionEntrySuccess",
                            help=gettext_lazy("The Komo event kind the rows represent."))
        parser.add_argument("--id-column", default=None,
                            help=gettext_lazy("The column holding a unique id of each row "
                                              "(default: a column named id)."))
        parser.add_argument("--derive-id", action="store_true",
                            help=gettext_lazy("Derive each row's id from its values "
                                              "(a stable hash) instead of an id column."))
        parser.add_argument("--time-column", default=None,
                            help=gettext_lazy("The column holding each row's time "
                                              "(default: a column named timestamp, time or date)."))
        parser.add_argument("--time-format", default="iso",
                            help=gettext_lazy("iso, unix, unix_ms or a strftime pattern such as "
                                              "%%d/%%m/%%Y %%H:%%M (default: iso)."))
        parser.add_argument("--map", action="append", default=[], metavar="COLUMN=KEY",
                            help=gettext_lazy("Map a column to a Komo key (repeatable); "
                                              "COLUMN= leaves the column out."))
        parser.add_argument("--dry-run", action="store_true",
                            help=gettext_lazy("Read and check every row; store nothing."))
        parser.add_argument("--progress", action="store_true",
                            help=gettext_lazy("Draw the progress bar even when the output is "
                                              "not a terminal."))  # fmt: skip

    def handle(self, *args: Any, **options: Any) -> None:
        hub = Hub.objects.filter(slug=options["slug"]).first()
        if hub is None:
            raise CommandError(_("No hub with slug %(slug)s.") % {"slug": options["slug"]})
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(_("No such file: %(path)s") % {"path": path})
        try:
            backfill = service.backfill_from_path(hub=hub, path=path)
        except CsvError as problem:
            raise CommandError(problem.message) from None
        try:
            self._configure(backfill, options)
            if options["dry_run"]:
                self._dry_run(backfill)
        except CsvError as problem:
            backfill.delete()
            raise CommandError(problem.message) from None
        if options["dry_run"]:
            backfill.delete()
            return
        self._run(backfill, draw=options["progress"] or sys.stdout.isatty())

    def _configure(self, backfill: Backfill, options: dict[str, Any]) -> None:
        columns = dict(backfill.columns)
        for item in options["map"]:
            column, sep, key = item.partition("=")
            if not sep or column not in columns:
                raise CsvError(
                    _("--map %(item)s: no such column (the header has: %(columns)s).")
                    % {"item": item, "columns": ", ".join(backfill.header)}
                )
            columns[column] = key.strip()
        id_column = backfill.id_column if options["id_column"] is None else options["id_column"]
        if options["derive_id"]:
            id_column = backfill_csv.DERIVED_ID
        time_column = options["time_column"] or backfill.time_column
        service.backfill_configure(
            backfill, columns=columns, event=options["event"], id_column=id_column,
            time_column=time_column, time_format=options["time_format"],
        )  # fmt: skip
        how = (_("id column “%(column)s”") % {"column": id_column}) if id_column else _(
            "ids derived from each row"
        )
        self.stdout.write(
            _("%(file)s → hub %(hub)s: event %(event)s, %(how)s, time column “%(time)s” (%(fmt)s).")
            % {"file": backfill.file_name, "hub": backfill.hub.slug, "event": backfill.event,
               "how": how, "time": time_column, "fmt": backfill.time_format}
        )  # fmt: skip

    def _dry_run(self, backfill: Backfill) -> None:
        hub, plan = backfill.hub, service.plan_of(backfill)
        good = bad = 0
        started = time.monotonic()
        with service.file_path(backfill).open("rb") as binary:
            reader = backfill_csv.reader_open(binary, delimiter=backfill.delimiter)
            for number, (line, values) in enumerate(reader.rows, start=1):
                try:
                    service.row_check(hub, plan, values)
                except RowError as problem:
                    bad += 1
                    if bad <= SHOWN_BAD_ROWS:
                        self.stdout.write(
                            _("row %(row)d (line %(line)d): %(reason)s")
                            % {"row": number, "line": line, "reason": problem.reason}
                        )
                    continue
                good += 1
        self.stdout.write(
            _("Dry run: %(read)d rows read, %(good)d would be queued (unless already there), "
              "%(bad)d unreadable, in %(seconds).1f s; nothing was stored.")
            % {"read": good + bad, "good": good, "bad": bad,
               "seconds": time.monotonic() - started}
        )  # fmt: skip

    def _run(self, backfill: Backfill, *, draw: bool) -> None:
        service.backfill_start(backfill, enqueue=False)
        started = time.monotonic()
        last_drawn = [0.0]

        def progress(current: Backfill) -> None:
            now = time.monotonic()
            if draw and now - last_drawn[0] >= REDRAW_SECONDS:
                last_drawn[0] = now
                self.stdout.write("\r" + progress_line(current), ending="")
                self.stdout.flush()

        backfill = service.backfill_import(
            backfill_id=backfill.pk, run_seconds=None, progress=progress
        )
        if draw:
            self.stdout.write("\r" + progress_line(backfill, done=True))
        seconds = max(time.monotonic() - started, 1e-6)
        if backfill.error:
            raise CommandError(backfill.error)
        self.stdout.write(summary_line(backfill, seconds))
        if backfill.rows_bad:
            self.stdout.write(
                _("Unreadable rows (row number and reason): %(path)s")
                % {"path": service.report_path(backfill)}
            )


def progress_line(backfill: Backfill, *, done: bool = False) -> str:
    share = 1.0 if done or not backfill.file_size else min(
        1.0, backfill.bytes_read / backfill.file_size
    )
    filled = int(share * BAR_WIDTH)
    bar = "#" * filled + "." * (BAR_WIDTH - filled)
    return _("[%(bar)s] %(percent)3d%%  read %(read)s  queued %(queued)s  skipped %(skipped)s") % {
        "bar": bar, "percent": int(share * 100), "read": f"{backfill.rows_read:,}",
        "queued": f"{backfill.rows_queued:,}", "skipped": f"{backfill.rows_skipped:,}",
    }  # fmt: skip


def summary_line(backfill: Backfill, seconds: float) -> str:
    return _(
        "%(read)s rows read in %(seconds).1f s (%(rate)s rows/s): %(queued)s queued, "
        "%(duplicate)s already there, %(bad)s unreadable."
    ) % {
        "read": f"{backfill.rows_read:,}", "seconds": seconds,
        "rate": f"{backfill.rows_read / seconds:,.0f}", "queued": f"{backfill.rows_queued:,}",
        "duplicate": f"{backfill.rows_duplicate:,}", "bad": f"{backfill.rows_bad:,}",
    }  # fmt: skip

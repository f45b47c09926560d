"""Reading a CSV export into Komo bodies, one row at a time (pure: no ORM, no HTTP).

* The file is UTF-8 with or without a byte-order mark; comma, semicolon or tab separated (told
  apart on the header line); quoted fields may hold separators and newlines (``csv`` with
  ``newline=""``). Bytes that are not UTF-8 do not stop the file: the row holding them is reported.
* Columns are matched to Komo keys by name, ignoring case and separators (``First Name``,
  ``first-name`` and ``first_name`` are one key).
* A row becomes a Komo body: the mapped columns' non-blank values, ``event`` (the chosen kind, or
  the row's own when a column is mapped to ``event``), ``timestamp`` (the time column read with its
  format, as ISO 8601 UTC) and ``id`` (the id column, or a stable hash of the row's values).

Rows are never kept: ``rows_read`` yields them as the file streams by.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

# A single field may be large (a long answer), not unbounded.
csv.field_size_limit(min(sys.maxsize, 16 * 1024 * 1024))

DELIMITERS = (",", ";", "\t")
DERIVED_ID = ""  # id_column value meaning "derive the id from the row"
DERIVED_ID_PREFIX = "row-"
IGNORE = ""  # a column mapped to this is left out of the body
TIME_FORMATS = ("iso", "unix", "unix_ms", "%d/%m/%Y %H:%M", "%m/%d/%Y %H:%M", "%Y-%m-%d %H:%M:%S")
# Komo's own keys (webhook bodies), offered and auto-matched besides the hub's mapped fields.
KOMO_KEYS = (
    "id", "event", "timestamp", "site_id", "site_name", "user_session_id", "card_id", "card_name",
    "card_type", "score", "correct", "competition_entry_id", "submission_id", "email",
    "first_name", "last_name", "mobile", "phone", "birthday", "postcode", "optin", "prize_name",
    "coupon_code", "external_id",
)  # fmt: skip
_NOT_ALNUM = re.compile(r"[^0-9a-z]+")


class CsvError(Exception):
    """The file as a whole cannot be read (no header, not text); ``message`` says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RowError(Exception):
    """One row cannot become a body; ``reason`` names why (never the row's values)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def name_key(name: str) -> str:
    """A column or key name for matching: lower case, letters and digits only."""
    return _NOT_ALNUM.sub("", name.lower())


def snake(name: str) -> str:
    """A header as a Komo-style key (``First Name`` → ``first_name``)."""
    return _NOT_ALNUM.sub("_", name.strip().lower()).strip("_")


def columns_auto(header: Iterable[str], known_keys: Iterable[str]) -> dict[str, str]:
    """column → Komo key: a known key with the same name (case and separators aside), else the
    column's own name in Komo's style."""
    by_name = {name_key(key): key for key in known_keys}
    return {column: by_name.get(name_key(column), snake(column)) for column in header}


def column_guess(header: Iterable[str], *candidates: str) -> str:
    """The first column whose name matches one of ``candidates`` (case and separators aside)."""
    wanted = [name_key(c) for c in candidates]
    names = {name_key(column): column for column in header}
    return next((names[w] for w in wanted if w in names), "")


# --- the file --------------------------------------------------------------------------------


def text_stream(binary: IO[bytes]) -> io.TextIOWrapper:
    """UTF-8 text of a binary file, the byte-order mark dropped; undecodable bytes become lone
    surrogates (the row holding them is reported, the rest of the file goes on)."""
    return io.TextIOWrapper(binary, encoding="utf-8-sig", errors="surrogateescape", newline="")


def delimiter_sniff(first_line: str) -> str:
    """The separator of a header line: the most frequent of comma, semicolon and tab outside
    quotes (a comma wins a tie)."""
    outside, quoted = [], False
    for ch in first_line:
        if ch == '"':
            quoted = not quoted
        elif not quoted:
            outside.append(ch)
    text = "".join(outside)
    return max(DELIMITERS, key=lambda d: (text.count(d), d == ","))


@dataclass
class Reader:
    """A CSV file streaming by: its header, then (line, values) per data row."""

    header: list[str]
    delimiter: str
    rows: Iterator[tuple[int, list[str]]]
    text: IO[str]  # held here: a text wrapper that is collected closes the caller's file


def reader_open(binary: IO[bytes], *, delimiter: str = "") -> Reader:
    """Read the header of a CSV file (``delimiter``: as chosen, or sniffed from the header)."""
    text = text_stream(binary)
    first = text.readline()
    if not first.strip():
        raise CsvError(_("The file is empty or its first line (the header) is blank."))
    if "\x00" in first:
        raise CsvError(_("The file is not text (it contains NUL bytes); upload a CSV file."))
    delimiter = delimiter or delimiter_sniff(first)
    chained = _chain(first, text)
    parser = csv.reader(chained, delimiter=delimiter)
    header = [cell.strip() for cell in next(parser)]
    if any(_surrogates(cell) for cell in header):
        raise CsvError(_("The header line is not UTF-8 text; save the file as UTF-8 CSV."))
    if not any(header):
        raise CsvError(_("The header line names no columns."))
    if len(set(header)) != len(header):
        raise CsvError(_("Two columns of the header have the same name; rename one."))
    return Reader(header=header, delimiter=delimiter, rows=_numbered(parser), text=text)


def _chain(first: str, rest: IO[str]) -> Iterator[str]:
    yield first
    yield from rest


def _numbered(parser: Any) -> Iterator[tuple[int, list[str]]]:
    """(line of the row's start, values); blank lines are skipped."""
    while True:
        line = parser.line_num + 1
        try:
            values = next(parser)
        except StopIteration:
            return
        except csv.Error as exc:  # e.g. a field larger than the limit
            yield line, ["\x00csv-error", str(exc)[:200]]
            continue
        if values and any(values):
            yield line, values


def _surrogates(text: str) -> bool:
    return not text.isascii() and any("\udc80" <= ch <= "\udcff" for ch in text)


# --- one row ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowPlan:
    """How each row becomes a body: computed once per file from the person's choices."""

    header: tuple[str, ...]
    keys: tuple[str, ...]  # per column: the Komo key, or IGNORE
    event: str
    id_index: int  # -1: derive the id from the row
    time_index: int
    time_format: str
    event_index: int  # -1: every row is ``event``


def row_plan(
    header: Iterable[str], *, columns: Mapping[str, str], event: str, id_column: str,
    time_column: str, time_format: str,
) -> RowPlan:  # fmt: skip
    header = tuple(header)
    keys = tuple((columns.get(column, IGNORE) or IGNORE).strip() for column in header)
    if time_column not in header:
        raise CsvError(_("Choose the column that holds each row's time."))
    if id_column and id_column not in header:
        raise CsvError(_("The id column “%(column)s” is not in the file.") % {"column": id_column})
    # The body's own keys come from the choices, not from columns that happen to share a name.
    reserved = {"id", "timestamp"}
    keys = tuple(IGNORE if key in reserved else key for key in keys)
    return RowPlan(
        header=header,
        keys=keys,
        event=event.strip(),
        id_index=header.index(id_column) if id_column else -1,
        time_index=header.index(time_column),
        time_format=time_format or "iso",
        event_index=keys.index("event") if "event" in keys else -1,
    )


def time_parse(text: str, time_format: str) -> datetime:
    """A row's time in UTC (a time without a zone is UTC). Raises ``RowError``."""
    text = text.strip()
    if not text:
        raise RowError(_("The time is empty."))
    try:
        if time_format == "iso":
            parsed = parse_datetime(text)
            if parsed is None and len(text) == 10:
                parsed = parse_datetime(text + "T00:00:00")
        elif time_format in ("unix", "unix_ms"):
            seconds = float(text) / (1000 if time_format == "unix_ms" else 1)
            parsed = datetime.fromtimestamp(seconds, tz=UTC)
        else:
            parsed = datetime.strptime(text, time_format)  # noqa: DTZ007 (UTC below)
    except (ValueError, OverflowError, OSError):
        parsed = None
    if parsed is None:
        raise RowError(
            _("The time cannot be read with the format “%(format)s”.") % {"format": time_format}
        )
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise RowError(_("The time is outside the years 1 to 9999.")) from None


def derived_id(values: Iterable[str]) -> str:
    """A stable id from a row's values: the same row always gives the same id."""
    digest = hashlib.sha256("\x1f".join(values).encode("utf-8", "surrogateescape")).hexdigest()
    return DERIVED_ID_PREFIX + digest[:40]


def iso_utc(moment: datetime) -> str:
    """Komo's own form of a UTC time: ``2026-03-14T09:26:53.589Z``."""
    return moment.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def row_body(plan: RowPlan, values: list[str]) -> tuple[dict[str, Any], datetime]:
    """The Komo body of one row and its time. Raises ``RowError``."""
    if values and values[0] == "\x00csv-error":
        raise RowError(_("The row cannot be read as CSV (%(detail)s).") % {"detail": values[1]})
    if len(values) != len(plan.header):
        raise RowError(
            _("The row has %(found)d columns, the header %(expected)d.")
            % {"found": len(values), "expected": len(plan.header)}
        )
    moment = time_parse(values[plan.time_index], plan.time_format)
    body: dict[str, Any] = {}
    for key, value in zip(plan.keys, values, strict=True):
        if key and value.strip():
            body[key] = value.strip()
    if plan.id_index >= 0:
        komo_id = values[plan.id_index].strip()
        if not komo_id:
            raise RowError(_("The id column is empty."))
    else:
        komo_id = derived_id(values)
    event = values[plan.event_index].strip() if plan.event_index >= 0 else plan.event
    if not event:
        raise RowError(_("The row names no event."))
    body["id"] = komo_id
    body["event"] = event
    body["timestamp"] = iso_utc(moment)
    return body, moment


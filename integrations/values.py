"""Turning one raw Komo value into the Braze value its type promises (pure: no I/O, no ORM).

Each type's rule lives in exactly one function here (``to_string``, ``to_number``,
``to_date``, ``to_utc_time``, ``phone_e164``, …); :func:`convert_value` picks one by a
mapping's type. A value that cannot be converted raises :class:`ValueProblem` (a stable code and
a translatable sentence that names the field, never the value); a value that sends nothing
returns :data:`ABSENT`. :class:`Problem` is how the mapping reports either to support staff.
"""

from __future__ import annotations

import enum
import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from functools import cache
from typing import Any, Final, TypeAlias

import phonenumbers
import pycountry
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.functional import Promise
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from integrations.braze.attributes import MAX_ARRAY_ITEMS, MAX_STRING_LENGTH
from integrations.spec import FieldMappingSpec

# A user-facing sentence: usually a lazy translation, rendered with str() in the reader's language.
Message: TypeAlias = "str | Promise"
BrazeValue: TypeAlias = "str | int | float | bool | list[str]"


class Absent(enum.Enum):
    """What :func:`convert_value` returns when a field sends nothing and that is not a problem."""

    VALUE = "absent"


ABSENT: Final = Absent.VALUE

_MAX_EMAIL_LENGTH: Final = 254  # RFC 5321 path limit; also keeps the value under Braze's 255.
_INT64_MAX: Final = 2**63 - 1


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a submission, for support staff and the hold reason."""

    field: str  # the Komo field (for identity problems: the identity field)
    attribute: str  # the Braze attribute ("" for identity problems)
    code: str  # stable machine code, e.g. "invalid_phone"
    message: Message  # translatable sentence naming the field; never contains the value
    held: bool  # True when this problem holds the submission back


class ValueProblem(Exception):
    """A raw value that its mapping type cannot turn into a Braze value.

    ``message`` is a translatable sentence with a ``{field}`` placeholder (and any ``params``),
    filled in by :meth:`sentence` once the Komo field name is known.
    """

    def __init__(self, code: str, message: Message, **params: object) -> None:
        super().__init__(code)
        self.code = code
        self.message = message
        self.params = params

    def sentence(self, field: str) -> Message:
        return format_lazy(self.message, field=field, **self.params)


# --------------------------------------------------------------------------------------------
# Values


def convert_value(
    mapping: FieldMappingSpec, raw: Any, *, default_phone_region: str
) -> BrazeValue | Absent:
    """Turn one raw Komo value into the Braze value its mapping type promises.

    Returns :data:`ABSENT` when nothing is to be sent; raises :class:`ValueProblem` when the value
    is unusable. Each type's rule lives in exactly one function below.
    """
    if mapping.type == "boolean":
        return to_boolean(raw)
    if mapping.type == "subscription":
        return to_subscription(raw, on_false=mapping.on_false)
    if is_blank(raw):
        return ABSENT
    converter = _CONVERTERS.get(mapping.type)
    if converter is None:
        raise ValueError(f"unknown value type {mapping.type!r}")
    return converter(raw, mapping.attribute, default_phone_region)


def is_blank(raw: Any) -> bool:
    if raw is None:
        return True
    if isinstance(raw, str):
        return not raw.strip()
    return isinstance(raw, list | tuple) and not raw


def to_string(raw: Any) -> str:
    """Trimmed text; other scalars are stringified (booleans as true/false); ≤ 255 characters.

    Longer text is a problem rather than silently truncated: a cut value would look valid in Braze.
    """
    text = scalar_text(raw).strip()
    if len(text) > MAX_STRING_LENGTH:
        raise ValueProblem(
            "too_long",
            _("“{field}” has {length} characters; Braze accepts at most {limit}."),
            length=len(text),
            limit=MAX_STRING_LENGTH,
        )
    return text


def scalar_text(raw: Any) -> str:
    if isinstance(raw, str):
        return raw
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, int | float):
        return str(raw)
    raise ValueProblem(
        "not_scalar", _("“{field}” holds a list or an object where a single value is expected.")
    )


_INTEGER_TEXT: Final = re.compile(r"[+-]?[0-9]+")
_DECIMAL_TEXT: Final = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NOT_A_NUMBER: Final = _("“{field}” is not a number.")


def to_number(raw: Any) -> int | float:
    """Text like "7" → 7 and "7.5" → 7.5; JSON numbers as they are; 64-bit ints, finite floats.

    Booleans are not numbers, and neither are "nan", "inf", "1,000" (the comma could be a
    thousands or a decimal separator) or any other text.
    """
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise ValueProblem("invalid_number", _NOT_A_NUMBER)
    if isinstance(raw, int):
        return _checked_int(raw)
    if isinstance(raw, float):
        return _checked_float(raw)
    text = raw.strip()
    if _INTEGER_TEXT.fullmatch(text):
        # Length first: int() refuses very long digit strings with an error of its own.
        if len(text.lstrip("+-").lstrip("0")) > len(str(_INT64_MAX)):
            raise _number_out_of_range()
        return _checked_int(int(text))
    if _DECIMAL_TEXT.fullmatch(text):
        return _checked_float(float(text))
    raise ValueProblem("invalid_number", _NOT_A_NUMBER)


def _checked_int(number: int) -> int:
    if not -_INT64_MAX - 1 <= number <= _INT64_MAX:
        raise _number_out_of_range()
    return number


def _checked_float(number: float) -> float:
    if math.isnan(number):
        raise ValueProblem("invalid_number", _NOT_A_NUMBER)
    if math.isinf(number):
        raise _number_out_of_range()
    return number


def _number_out_of_range() -> ValueProblem:
    return ValueProblem("number_out_of_range", _("“{field}” is a number too large for Braze."))


_TRUE_WORDS: Final = frozenset({"true", "1", "yes", "on"})
_FALSE_WORDS: Final = frozenset({"false", "0", "no", "off", ""})


def to_boolean(raw: Any) -> bool | Absent:
    """true/1/yes/on → True; false/0/no/off/"" → False (any case, trimmed); JSON booleans and the
    integers 0 and 1 as well. Missing or null sends nothing.
    """
    if raw is None:
        return ABSENT
    word = _answer_word(raw)
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    raise ValueProblem(
        "invalid_boolean",
        _("“{field}” is not a yes/no value (true/false, yes/no, 1/0 or on/off)."),
    )


def _answer_word(raw: Any) -> str | None:
    """A checkbox-like answer as a trimmed, case-folded word; None when it cannot be one."""
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, int) and raw in (0, 1):
        return str(raw)
    if isinstance(raw, str):
        return raw.strip().casefold()
    return None


_TICKED_WORDS: Final = _TRUE_WORDS | {"opted_in", "subscribed"}
_UNSUBSCRIBED_WORDS: Final = frozenset({"unsubscribed", "opted_out"})


def to_subscription(raw: Any, *, on_false: str | None) -> str | Absent:
    """A ticked opt-in → "opted_in"; "unsubscribed" → "unsubscribed"; an unticked box → nothing.

    An unticked box (false/no/0/off/"") is not an opt-out: it sends nothing, unless the mapping's
    ``on_false`` ("unsubscribed" or "subscribed") says the field really is an opt-out question.
    "subscribed" counts as ticked, because a form answer "subscribed" means the person said yes.
    Missing or null sends nothing, even with ``on_false``: no answer was given.
    """
    if raw is None:
        return ABSENT
    word = _answer_word(raw)
    word = word.replace("-", "_").replace(" ", "_") if word is not None else None
    if word in _TICKED_WORDS:
        return "opted_in"
    if word in _UNSUBSCRIBED_WORDS:
        return "unsubscribed"
    if word in _FALSE_WORDS:
        return on_false or ABSENT
    raise ValueProblem(
        "invalid_subscription",
        _("“{field}” is not a subscription answer (a ticked or unticked box, or “unsubscribed”)."),
    )


_DATE_TIME_TEXT: Final = re.compile(
    r"(?P<year>[0-9]{4})(?P<sep>[-/])(?P<month>[0-9]{2})(?P=sep)(?P<day>[0-9]{2})"
    r"(?:[T ](?P<hour>[0-9]{2}):(?P<minute>[0-9]{2})"
    r"(?::(?P<second>[0-9]{2})(?:[.,](?P<fraction>[0-9]{1,9}))?)?"
    r"(?P<zone>Z|(?P<sign>[+-])(?P<zone_hour>[0-9]{2})(?::?(?P<zone_minute>[0-9]{2}))?)?)?",
    re.IGNORECASE,
)
# Day/month order cannot be known from the value (01/02/2000 is 1 Feb or 2 Jan), so these are
# refused as a whole rather than guessed only when the day happens to exceed 12.
_DAY_MONTH_TEXT: Final = re.compile(r"[0-9]{1,2}[-/.][0-9]{1,2}[-/.][0-9]{2,4}")
_MIN_YEAR: Final = 1
_MAX_YEAR: Final = 3000  # Braze stores later (and earlier) years as a string, not a time.


def to_date(raw: Any, *, attribute: str) -> str:
    """An ISO date → "YYYY-MM-DD"; an ISO date and time → UTC "YYYY-MM-DDTHH:MM:SS[.mmm]Z".

    Accepts YYYY-MM-DD, YYYY/MM/DD and ISO 8601 date-times with "T" or a space, optional seconds
    and fraction, and a "Z" or ±HH[:MM] offset; a time without a zone is UTC (as Braze reads it).
    ``dob`` always gets the calendar date as written, without shifting it to UTC, because a
    birthday does not move with time zones. Years must be 1..3000.
    """
    text = raw.strip() if isinstance(raw, str) else ""
    match = _DATE_TIME_TEXT.fullmatch(text)
    if match is None:
        if _DAY_MONTH_TEXT.fullmatch(text):
            raise ValueProblem(
                "ambiguous_date",
                _("“{field}” is a date whose day and month order is unclear; send YYYY-MM-DD."),
            )
        raise _invalid_date()
    day = _calendar_date(match)
    if match["hour"] is None:
        return day.isoformat()
    moment = _utc_moment(day, match)
    return day.isoformat() if attribute == "dob" else _format_utc(moment)


def to_utc_time(raw: Any) -> str:
    """An ISO 8601 date-time → UTC "YYYY-MM-DDTHH:MM:SS.mmmZ" (Braze's event ``time``), always
    with milliseconds, as Komo writes its ``timestamp``.

    The same grammar as :func:`to_date`, but a time of day is required: an event happens at a
    moment, and a bare date would silently become midnight UTC.
    """
    text = raw.strip() if isinstance(raw, str) else ""
    match = _DATE_TIME_TEXT.fullmatch(text)
    if match is None or match["hour"] is None:
        raise ValueProblem(
            "invalid_time",
            _("“{field}” is not an ISO 8601 date and time (for example 2026-03-14T09:26:53Z)."),
        )
    moment = _utc_moment(_calendar_date(match), match)
    return moment.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def _calendar_date(match: re.Match[str]) -> date:
    year = int(match["year"])
    _check_year(year)
    try:
        return date(year, int(match["month"]), int(match["day"]))
    except ValueError:
        raise _invalid_date() from None


def _utc_moment(day: date, match: re.Match[str]) -> datetime:
    milliseconds = int((match["fraction"] or "").ljust(3, "0")[:3])
    try:
        local = datetime(
            day.year,
            day.month,
            day.day,
            int(match["hour"]),
            int(match["minute"]),
            int(match["second"] or 0),
            milliseconds * 1000,
            tzinfo=_zone(match),
        )
    except ValueError:
        raise _invalid_date() from None
    try:
        moment = local.astimezone(UTC)
    except OverflowError:  # before year 1 in UTC
        raise _date_out_of_range() from None
    _check_year(moment.year)
    return moment


def _zone(match: re.Match[str]) -> timezone:
    if match["sign"] is None:
        return UTC
    hours, minutes = int(match["zone_hour"]), int(match["zone_minute"] or 0)
    if minutes >= 60:
        raise ValueError("offset minutes out of range")
    offset = timedelta(hours=hours, minutes=minutes)  # timezone() refuses 24 hours and more
    return timezone(-offset if match["sign"] == "-" else offset)


def _format_utc(moment: datetime) -> str:
    timespec = "milliseconds" if moment.microsecond else "seconds"
    return moment.replace(tzinfo=None).isoformat(timespec=timespec) + "Z"


def _check_year(year: int) -> None:
    if not _MIN_YEAR <= year <= _MAX_YEAR:
        raise _date_out_of_range()


def _date_out_of_range() -> ValueProblem:
    return ValueProblem(
        "date_out_of_range",
        _("“{field}” is a date outside the years {first} to {last}."),
        first=_MIN_YEAR,
        last=_MAX_YEAR,
    )


def _invalid_date() -> ValueProblem:
    return ValueProblem(
        "invalid_date", _("“{field}” is not a valid date (expected YYYY-MM-DD or ISO 8601).")
    )


def phone_e164(text: str, region: str) -> str | None:
    """The E.164 form (``+61412999888``) of a valid phone number, else ``None``.

    The one phone rule of the portal: attribute values, the identity sent to Braze, the person
    key of phone identities (first engagement, support search) all use it. Text without a leading
    "+" (or an international prefix) is read in ``region``, an ISO 3166 code such as ``AU``
    (case and spaces ignored; empty: only international numbers are read)."""
    region = (region or "").strip().upper()
    try:
        number = phonenumbers.parse(text, region or None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_phone(raw: Any, default_region: str) -> str:
    """The E.164 form of a valid phone number; without "+" it is read in ``default_region``."""
    text = raw if isinstance(raw, str) else str(raw) if type(raw) is int else ""
    e164 = phone_e164(text, default_region)
    if e164 is None:
        raise _invalid_phone(default_region.strip().upper())
    return e164


def _invalid_phone(region: str) -> ValueProblem:
    if region:
        return ValueProblem(
            "invalid_phone",
            _(
                "“{field}” is not a valid phone number (without a leading + it is read as a "
                "{region} number)."
            ),
            region=region,
        )
    return ValueProblem(
        "invalid_phone",
        _(
            "“{field}” is not a valid phone number (without a leading + it needs the hub's "
            "default phone region)."
        ),
    )


def normalise_email(raw: Any) -> str:
    """The trimmed, lower-cased address, if it is one valid address with a dotted domain."""
    address = raw.strip().lower() if isinstance(raw, str) else ""
    if not _looks_like_one_address(address):
        raise _invalid_email()
    try:
        validate_email(address)
    except ValidationError:
        raise _invalid_email() from None
    return address


def _looks_like_one_address(address: str) -> bool:
    # Django's validator alone accepts "user@localhost" and quoted local parts with spaces.
    _, at, domain = address.partition("@")
    return (
        bool(at)
        and address.count("@") == 1
        and "." in domain
        and len(address) <= _MAX_EMAIL_LENGTH
        and not any(character.isspace() for character in address)
    )


def _invalid_email() -> ValueProblem:
    return ValueProblem("invalid_email", _("“{field}” is not a valid email address."))


# Everyday names that are not ISO short, common or official names. Keys are matched after
# _country_key normalisation (case, accents, dots, a leading "the").
_COUNTRY_ALIASES: Final[dict[str, str]] = {
    "uk": "GB",
    "great britain": "GB",
    "britain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "northern ireland": "GB",
    "usa": "US",
    "america": "US",
    "united states of america": "US",
    "korea, south": "KR",
    "republic of korea": "KR",
    "korea, north": "KP",
    "russia": "RU",
    "turkey": "TR",
    "czech republic": "CZ",
    "holland": "NL",
    "ivory coast": "CI",
    "macedonia": "MK",
    "swaziland": "SZ",
    "burma": "MM",
    "cape verde": "CV",
    "brunei": "BN",
    "vatican": "VA",
    "vatican city": "VA",
    "falkland islands": "FK",
    "macau": "MO",
    "palestine": "PS",
    "uae": "AE",
}


def to_country(raw: Any) -> str:
    """ISO 3166-1 alpha-2 from an alpha-2 or alpha-3 code or an English name, any case."""
    code = _country_index().get(_country_key(raw)) if isinstance(raw, str) else None
    if code is None:
        raise ValueProblem(
            "unknown_country",
            _("“{field}” is not a country (expected an ISO code or an English country name)."),
        )
    return code


def _country_key(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    key = " ".join(plain.casefold().replace(".", "").split())
    return key.removeprefix("the ")


@cache
def _country_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for country in pycountry.countries:
        names = (
            country.alpha_2,
            country.alpha_3,
            country.name,
            getattr(country, "common_name", None),
            getattr(country, "official_name", None),
        )
        index.update({_country_key(name): country.alpha_2 for name in names if name})
    index.update({_country_key(alias): code for alias, code in _COUNTRY_ALIASES.items()})
    return index


_GENDER_CODES: Final[dict[str, str]] = {
    "m": "M",
    "male": "M",
    "man": "M",
    "f": "F",
    "female": "F",
    "woman": "F",
    "o": "O",
    "other": "O",
    "non-binary": "O",
    "nonbinary": "O",
    "non binary": "O",
    "n": "N",
    "not applicable": "N",
    "n/a": "N",
    "na": "N",
    "p": "P",
    "prefer not to say": "P",
    "prefer not to answer": "P",
    "rather not say": "P",
}
_UNKNOWN_GENDER_WORDS: Final = frozenset({"unknown"})


def to_gender(raw: Any) -> str | Absent:
    """Braze's M/F/O/N/P from a letter or word, any case ("_" read as a space).

    M: m, male, man. F: f, female, woman. O: o, other, non-binary, nonbinary. N: n, not
    applicable, n/a, na. P: p, prefer not to say, prefer not to answer, rather not say.
    "unknown" sends nothing: Braze's "unknown" is null, and sending null would erase a gender the
    profile already has, which not knowing is no reason to do.
    """
    key = " ".join(raw.casefold().replace("_", " ").split()) if isinstance(raw, str) else ""
    if key in _UNKNOWN_GENDER_WORDS:
        return ABSENT
    code = _GENDER_CODES.get(key)
    if code is None:
        raise ValueProblem(
            "unknown_gender",
            _(
                "“{field}” is not a gender Braze accepts (male, female, other, not applicable or "
                "prefer not to say)."
            ),
        )
    return code


def to_array(raw: Any) -> list[str] | Absent:
    """A JSON list or comma-separated text → trimmed, non-empty, de-duplicated strings in order.

    At most 100 items of at most 255 characters: Braze drops the oldest items beyond its limit,
    which would silently lose data, so more is a problem. No items left sends nothing.
    """
    pieces = raw.split(",") if isinstance(raw, str) else raw if isinstance(raw, list) else [raw]
    items = list(dict.fromkeys(text for text in map(_array_item, pieces) if text))
    if not items:
        return ABSENT
    if len(items) > MAX_ARRAY_ITEMS:
        raise ValueProblem(
            "too_many_items",
            _("“{field}” has {count} items; Braze keeps at most {limit}."),
            count=len(items),
            limit=MAX_ARRAY_ITEMS,
        )
    if any(len(item) > MAX_STRING_LENGTH for item in items):
        raise ValueProblem(
            "too_long",
            _("“{field}” has an item longer than {limit} characters."),
            limit=MAX_STRING_LENGTH,
        )
    return items


def _array_item(raw: Any) -> str:
    return "" if raw is None else scalar_text(raw).strip()


_CONVERTERS: Final[dict[str, Callable[[Any, str, str], BrazeValue | Absent]]] = {
    "string": lambda raw, attribute, region: to_string(raw),
    "number": lambda raw, attribute, region: to_number(raw),
    "date": lambda raw, attribute, region: to_date(raw, attribute=attribute),
    "phone": lambda raw, attribute, region: normalise_phone(raw, region),
    "email": lambda raw, attribute, region: normalise_email(raw),
    "country": lambda raw, attribute, region: to_country(raw),
    "gender": lambda raw, attribute, region: to_gender(raw),
    "array": lambda raw, attribute, region: to_array(raw),
}

"""A local Braze look-alike: ``POST /users/track`` and transactional sends, with an inspection UI.

Contract (braze-api.md is the reference; where Braze's behaviour is UNCONFIRMED the sandbox picks
the stricter reading, so code that passes here should pass at Braze):

* Auth: ``Authorization: Bearer <key>``; unknown, missing or quoted key → 401, a key listed in
  ``forbidden_keys`` (it lacks ``users.track``) → 403 ``Access Denied``.
* ``/users/track``: body > 4 MiB → 413; not a JSON object → 400; no data → 400; an array with
  more than 75 objects (or more updates than ``max_updates_per_request``) → 400
  ``Max Input Length Exceeded``; otherwise 201 ``{"message": "success", "<array>_processed": n,
  "errors": [{"type", "input_array", "index"}]}`` where invalid objects are listed and not applied.
* Profiles are created and updated per Braze's identifier and ``_update_existing_only`` rules and
  attribute semantics (``null`` unsets, ``inc``, ``add``/``remove``, array limit, nested merge).
* One fixed-window rate limit shared by all keys; ``X-RateLimit-*`` headers on every
  ``/users/track`` response; 429 when exhausted.
* Injected faults (``fail_rate``, ``fail_next``, ``status_next``, ``latency_ms``, ``drop_rate``,
  ``drop_next``) apply before anything else, like an unhealthy edge in front of Braze.
* ``/_sandbox/`` shows requests and profiles; ``/_sandbox/api/...`` is the same as JSON and lets
  tests reconfigure or reset the sandbox. No full API key is ever stored, logged or returned.

Standard library HTTP server only; of Django just ``gettext`` and ``escape`` for the page. The
rules are written from braze-api.md, deliberately not imported from the portal's own modules, so a
misunderstanding in the portal cannot hide behind the same misunderstanding here.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import itertools
import json
import logging
import math
import random
import re
import socket
import socketserver
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final, NamedTuple
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

from django.core.exceptions import ImproperlyConfigured
from django.utils.html import escape
from django.utils.translation import gettext

logger = logging.getLogger(__name__)

MAX_BODY_BYTES: Final = 4 * 1024 * 1024
MAX_OBJECTS_PER_ARRAY: Final = 75
MAX_STRING_LENGTH: Final = 255
MAX_EVENT_PROPERTIES: Final = 256
MAX_NESTED_BYTES: Final = 100 * 1024
MAX_ARRAY_LIMIT: Final = 100
TRANSACTIONAL_DEDUP_SECONDS: Final = 24 * 3600
TRACK_ARRAYS: Final = ("attributes", "events", "purchases")

NO_DATA_MESSAGE: Final = (
    "Valid data must be provided in the 'attributes', 'events', or 'purchases' fields."
)
MAX_INPUT_MESSAGE: Final = "Max Input Length Exceeded"
RATE_LIMIT_MESSAGE: Final = "Rate limit exceeded"
MISSING_IDENTIFIER: Final = (
    "'external_id' or 'braze_id' or 'user_alias' or 'email' or 'phone' is required"
)

# Bodies above the limit are still read (up to this much) so the client receives the 413 instead
# of a reset connection while it is still sending.
_DRAIN_LIMIT: Final = 64 * 1024 * 1024
_KEEP_BODY_LIMIT: Final = 1024 * 1024
_INSPECT_BODY_LIMIT: Final = 1024 * 1024
_PROFILE_HISTORY_LIMIT: Final = 1000
_SENDS_LIMIT: Final = 1000
_PAGE_REQUESTS: Final = 50
_PAGE_PROFILES: Final = 100
_SEND_PATH: Final = re.compile(r"/transactional/v1/campaigns/([^/]+)/send")
_EXTERNAL_SEND_ID: Final = re.compile(r"^[a-zA-Z0-9-_+/=]+$")
_EMAIL: Final = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE: Final = re.compile(r"^\+?[0-9 ().\-]+$")
_DOB: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_COUNTRY: Final = re.compile(r"^[A-Z]{2}$")
_LANGUAGE: Final = re.compile(r"^[A-Za-z]{2}$")
_CURRENCY: Final = re.compile(r"^[A-Za-z]{3}$")
_BRAZE_TIME: Final = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}):(\d{3})Z$")
_GENDERS: Final = frozenset({"M", "F", "O", "N", "P"})
_SUBSCRIPTION_STATES: Final = frozenset({"opted_in", "subscribed", "unsubscribed"})
_GROUP_STATES: Final = frozenset({"subscribed", "unsubscribed"})
_RESERVED_EVENT_PROPERTIES: Final = frozenset({"time", "event_name"})
# Dummy ids Braze refuses ("provided external_id is blacklisted and disallowed"); Braze's full
# list is not published, these are the ones a str(None)-style bug produces.
_BLOCKED_EXTERNAL_IDS: Final = frozenset({"null", "none", "nil", "undefined", "nan"})
# Keys of an attributes object that steer processing instead of setting an attribute.
_CONTROL_KEYS: Final = frozenset(
    {
        "external_id",
        "user_alias",
        "braze_id",
        "_update_existing_only",
        "_merge_objects",
        "push_token_import",
    }
)


def _(message: str) -> str:
    """``gettext`` that also works when the sandbox runs without Django settings."""
    try:
        return gettext(message)
    except ImproperlyConfigured:
        return message


class SandboxConfigError(ValueError):
    """A setting passed to ``BrazeSandbox``/``configure``/``/_sandbox/api/config`` is invalid."""


# --------------------------------------------------------------------------------------------
# Configuration


@dataclass(frozen=True)
class SandboxConfig:
    """The sandbox's settings. ``*_next`` values are consumed as requests arrive."""

    api_keys: frozenset[str] = frozenset()
    forbidden_keys: frozenset[str] = frozenset()
    accept_any_key: bool = False
    rate_limit: int = 3000
    rate_window: float = 3.0
    array_limit: int = 25
    max_updates_per_request: int | None = None
    fail_rate: float = 0.0
    fail_next: int = 0
    status_next: tuple[int, ...] = ()
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    drop_rate: float = 0.0
    drop_next: int = 0
    log_limit: int = 500

    def updated(self, changes: Mapping[str, object]) -> SandboxConfig:
        """A copy with ``changes`` applied; raises ``SandboxConfigError`` naming a bad setting."""
        unknown = sorted(set(changes) - set(_COERCERS))
        if unknown:
            raise SandboxConfigError(f"unknown setting(s): {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for name, value in changes.items():
            try:
                values[name] = _COERCERS[name](value)
            except (TypeError, ValueError) as exc:
                raise SandboxConfigError(f"{name}: {exc}") from exc
        return dataclasses.replace(self, **values)

    def public(self) -> dict[str, Any]:
        """The settings as JSON-ready data, keys masked to their last four characters."""
        data = dataclasses.asdict(self)
        data["api_keys"] = sorted(mask_key(key) for key in self.api_keys)
        data["forbidden_keys"] = sorted(mask_key(key) for key in self.forbidden_keys)
        data["status_next"] = list(self.status_next)
        return data


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _int_from(minimum: int, maximum: int | None = None) -> Callable[[object], int]:
    def coerce(value: object) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError("expected an integer")
        if value < minimum:
            raise ValueError(f"must be at least {minimum}")
        if maximum is not None and value > maximum:
            raise ValueError(f"must be at most {maximum}")
        return value

    return coerce


def _optional_int_from(minimum: int) -> Callable[[object], int | None]:
    coerce = _int_from(minimum)
    return lambda value: None if value is None else coerce(value)


def _number_from(minimum: float, maximum: float | None = None) -> Callable[[object], float]:
    def coerce(value: object) -> float:
        if not _is_number(value):
            raise TypeError("expected a number")
        number = float(value)  # type: ignore[arg-type]
        if not math.isfinite(number):
            raise ValueError("must be a finite number")
        if number < minimum:
            raise ValueError(f"must be at least {minimum}")
        if maximum is not None and number > maximum:
            raise ValueError(f"must be at most {maximum}")
        return number

    return coerce


def _positive_number(value: object) -> float:
    number = _number_from(0.0)(value)
    if number <= 0:
        raise ValueError("must be more than 0")
    return number


def _boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError("expected true or false")
    return value


def _key_set(value: object) -> frozenset[str]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise TypeError("expected a list of keys")
    keys = frozenset(value)
    if not all(isinstance(key, str) and key for key in keys):
        raise TypeError("keys must be non-empty strings")
    return keys


def _status_codes(value: object) -> tuple[int, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise TypeError("expected a list of HTTP status codes")
    return tuple(_int_from(300, 599)(code) for code in value)


_COERCERS: Final[dict[str, Callable[[object], object]]] = {
    "api_keys": _key_set,
    "forbidden_keys": _key_set,
    "accept_any_key": _boolean,
    "rate_limit": _int_from(1),
    "rate_window": _positive_number,
    "array_limit": _int_from(1, MAX_ARRAY_LIMIT),
    "max_updates_per_request": _optional_int_from(1),
    "fail_rate": _number_from(0.0, 1.0),
    "fail_next": _int_from(0),
    "status_next": _status_codes,
    "latency_ms": _number_from(0.0),
    "latency_jitter_ms": _number_from(0.0),
    "drop_rate": _number_from(0.0, 1.0),
    "drop_next": _int_from(0),
    "log_limit": _int_from(1),
}


def mask_key(key: str) -> str:
    """The last four characters of ``key`` (nothing for keys too short to hide the rest)."""
    return key[-4:] if len(key) >= 8 else ""


# --------------------------------------------------------------------------------------------
# Validation: each function returns Braze-style error text, or None when the input is valid.


class Identity(NamedTuple):
    """Who a track object addresses. For ``user_alias``, ``value`` is the name and ``label`` the
    label; for the other kinds ``value`` is the identifier as sent."""

    kind: str
    value: str
    label: str = ""


def identity_of(obj: Mapping[str, Any]) -> Identity | str:
    """The object's identifier, or the error text when the identifier rule is broken.

    Exactly one of ``external_id``, ``user_alias``, ``braze_id``; ``email`` (first) or ``phone``
    identify only when none of those three is present.
    """
    present = [key for key in ("external_id", "user_alias", "braze_id") if key in obj]
    if len(present) > 1:
        return "only one of 'external_id', 'braze_id' or 'user_alias' may be provided"
    if present == ["user_alias"]:
        return _alias_identity(obj["user_alias"])
    if present:
        kind = present[0]
        value = obj[kind]
        if not isinstance(value, str) or not value.strip():
            return f"'{kind}' must be a non-empty string"
        if kind == "external_id" and value.strip().lower() in _BLOCKED_EXTERNAL_IDS:
            return "provided external_id is blacklisted and disallowed"
        return Identity(kind, value)
    for kind, error_of in (("email", _email_error), ("phone", _phone_error)):
        if kind in obj:
            return error_of(obj[kind]) or Identity(kind, obj[kind])
    return MISSING_IDENTIFIER


def _alias_identity(alias: object) -> Identity | str:
    if not isinstance(alias, dict):
        return "'user_alias' must be an object with 'alias_name' and 'alias_label'"
    name, label = alias.get("alias_name"), alias.get("alias_label")
    if not isinstance(name, str) or not name or not isinstance(label, str) or not label:
        return "'user_alias' requires both 'alias_name' and 'alias_label'"
    return Identity("user_alias", name, label)


def _object_basics_error(obj: object) -> str | None:
    """Shape, identifier and control-flag checks shared by attributes, events and purchases."""
    if not isinstance(obj, dict):
        return "object must be a JSON object"
    identity = identity_of(obj)
    if isinstance(identity, str):
        return identity
    for flag in ("_update_existing_only", "_merge_objects"):
        if flag in obj and not isinstance(obj[flag], bool):
            return f"'{flag}' must be a boolean"
    return None


def attribute_object_error(obj: object) -> str | None:
    """Validate one object of the ``attributes`` array."""
    error = _object_basics_error(obj)
    if error is not None:
        return error
    assert isinstance(obj, dict)
    for key, value in obj.items():
        if key in _CONTROL_KEYS:
            continue
        error = attribute_error(key, value)
        if error is not None:
            return error
    return None


def attribute_error(key: str, value: Any) -> str | None:
    """Validate one attribute (standard or custom) and the value or operation sent for it."""
    if not key or key.startswith("$") or len(key) > MAX_STRING_LENGTH:
        return f"invalid attribute name '{key[:MAX_STRING_LENGTH]}'"
    validator = _STANDARD_VALIDATORS.get(key)
    if validator is not None:
        return validator(value)
    return _custom_value_error(key, value)


def _nullable(check: Callable[[Any], str | None]) -> Callable[[Any], str | None]:
    return lambda value: None if value is None else check(value)


def _pattern_error(pattern: re.Pattern[str], what: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        ok = isinstance(value, str) and pattern.fullmatch(value) is not None
        return None if ok else f"'{what}' must be {_FORMAT_HINTS[what]}"

    return check


_FORMAT_HINTS: Final = {
    "country": "an ISO 3166-1 alpha-2 code such as 'AU'",
    "language": "an ISO 639-1 code such as 'en'",
}


def _email_error(value: Any) -> str | None:
    ok = isinstance(value, str) and len(value) <= MAX_STRING_LENGTH and _EMAIL.fullmatch(value)
    return None if ok else "'email' is not a valid email address"


def _phone_error(value: Any) -> str | None:
    if isinstance(value, str) and _PHONE.fullmatch(value.strip()):
        digits = sum(c.isdigit() for c in value)
        if 7 <= digits <= 15:
            return None
    return "'phone' is not a valid phone number"


def _dob_error(value: Any) -> str | None:
    if isinstance(value, str) and _DOB.fullmatch(value):
        try:
            date.fromisoformat(value)
        except ValueError:
            pass
        else:
            return None
    return "'dob' must be a date in the format YYYY-MM-DD"


def _choice_error(key: str, choices: frozenset[str]) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if isinstance(value, str) and value in choices:
            return None
        return f"'{key}' must be one of {', '.join(sorted(choices))}"

    return check


def _string_error(key: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if not isinstance(value, str):
            return f"'{key}' must be a string"
        if len(value) > MAX_STRING_LENGTH:
            return f"'{key}' is longer than {MAX_STRING_LENGTH} characters"
        return None

    return check


def _time_attribute_error(key: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if parse_braze_time(value) is not None else f"'{key}' must be a time"

    return check


def _boolean_error(key: str) -> Callable[[Any], str | None]:
    return lambda value: None if isinstance(value, bool) else f"'{key}' must be a boolean"


def _subscription_groups_error(value: Any) -> str | None:
    problem = "'subscription_groups' must be a list of {subscription_group_id, subscription_state}"
    if not isinstance(value, list):
        return problem
    for group in value:
        if not isinstance(group, dict):
            return problem
        group_id, state = group.get("subscription_group_id"), group.get("subscription_state")
        if not isinstance(group_id, str) or not group_id or state not in _GROUP_STATES:
            return problem
    return None


def _location_error(value: Any) -> str | None:
    ok = (
        isinstance(value, dict)
        and _is_number(value.get("longitude"))
        and _is_number(value.get("latitude"))
        and -180 <= value["longitude"] <= 180
        and -90 <= value["latitude"] <= 90
    )
    return None if ok else "'current_location' must be {longitude, latitude}"


def _anything(value: Any) -> str | None:
    return None


_STANDARD_VALIDATORS: Final[dict[str, Callable[[Any], str | None]]] = {
    "first_name": _nullable(_string_error("first_name")),
    "last_name": _nullable(_string_error("last_name")),
    "home_city": _nullable(_string_error("home_city")),
    "email": _nullable(_email_error),
    "phone": _nullable(_phone_error),
    "dob": _nullable(_dob_error),
    "country": _nullable(_pattern_error(_COUNTRY, "country")),
    "language": _nullable(_pattern_error(_LANGUAGE, "language")),
    "gender": _nullable(_choice_error("gender", _GENDERS)),
    "email_subscribe": _choice_error("email_subscribe", _SUBSCRIPTION_STATES),
    "push_subscribe": _choice_error("push_subscribe", _SUBSCRIPTION_STATES),
    # Braze ignores invalid time zones rather than rejecting the object (applied below).
    "time_zone": _nullable(_string_error("time_zone")),
    "subscription_groups": _subscription_groups_error,
    "current_location": _nullable(_location_error),
    "date_of_first_session": _nullable(_time_attribute_error("date_of_first_session")),
    "date_of_last_session": _nullable(_time_attribute_error("date_of_last_session")),
    "marked_email_as_spam_at": _nullable(_time_attribute_error("marked_email_as_spam_at")),
    "email_open_tracking_disabled": _boolean_error("email_open_tracking_disabled"),
    "email_click_tracking_disabled": _boolean_error("email_click_tracking_disabled"),
    "image_url": _nullable(_string_error("image_url")),
    "facebook": _anything,
    "twitter": _anything,
    "push_tokens": _anything,
}


def _custom_value_error(key: str, value: Any) -> str | None:
    if value is None or isinstance(value, bool) or _is_number(value):
        return None
    if isinstance(value, str):
        if len(value) > MAX_STRING_LENGTH:
            return f"'{key}' value is longer than {MAX_STRING_LENGTH} characters"
        return None
    if isinstance(value, list):
        return _array_value_error(key, value)
    if isinstance(value, dict):
        return _operation_error(key, value)
    return f"'{key}' has an unsupported value"


def _array_value_error(key: str, items: list[Any]) -> str | None:
    if items and all(isinstance(item, dict) for item in items):
        return _size_error(key, items)
    for item in items:
        if isinstance(item, str) and len(item) > MAX_STRING_LENGTH:
            return f"'{key}' has an item longer than {MAX_STRING_LENGTH} characters"
        if not isinstance(item, str) and not _is_number(item):
            return f"'{key}' must be an array of strings or an array of objects"
    return None


def _operation_error(key: str, value: dict[str, Any]) -> str | None:
    keys = set(value)
    if keys == {"inc"}:
        return None if _is_number(value["inc"]) else f"'{key}' increment must be a number"
    if keys and keys <= {"add", "remove"}:
        for operation in keys:
            if not isinstance(value[operation], list):
                return f"'{key}' {operation} must be an array"
            error = _array_value_error(key, value[operation])
            if error is not None:
                return error
        return None
    if keys and keys <= {"$add", "$remove", "$update"}:
        return _object_array_operation_error(key, value)
    if keys == {"$time"}:
        return None if parse_braze_time(value["$time"]) is not None else f"'{key}' bad $time"
    return _nested_object_error(key, value) or _size_error(key, value)


def _object_array_operation_error(key: str, value: dict[str, Any]) -> str | None:
    for operation, items in value.items():
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            return f"'{key}' {operation} must be an array of objects"
        if operation != "$add" and not all(
            "$identifier_key" in item and "$identifier_value" in item for item in items
        ):
            return f"'{key}' {operation} needs $identifier_key and $identifier_value"
        if operation == "$update" and not all(
            isinstance(item.get("$new_object"), dict) for item in items
        ):
            return f"'{key}' $update needs $new_object"
    return _size_error(key, value)


def _nested_object_error(key: str, value: dict[str, Any]) -> str | None:
    for name, inner in value.items():
        if not isinstance(name, str) or not name or any(c in name for c in " .$"):
            return f"'{key}' has an invalid nested key '{name}'"
        if len(name) > MAX_STRING_LENGTH:
            return f"'{key}' has a nested key longer than {MAX_STRING_LENGTH} characters"
        if isinstance(inner, str) and len(inner) > MAX_STRING_LENGTH:
            return f"'{key}.{name}' is longer than {MAX_STRING_LENGTH} characters"
        if isinstance(inner, dict):
            if set(inner) == {"$time"}:
                if parse_braze_time(inner["$time"]) is None:
                    return f"'{key}.{name}' has an invalid $time"
                continue
            error = _nested_object_error(f"{key}.{name}", inner)
            if error is not None:
                return error
    return None


def _size_error(key: str, value: Any) -> str | None:
    size = len(json.dumps(value, separators=(",", ":")).encode("utf-8"))
    return None if size <= MAX_NESTED_BYTES else f"'{key}' is larger than 100 KB"


def parse_braze_time(value: Any) -> datetime | None:
    """Parse a time in one of Braze's accepted formats; None when it is not one."""
    if not isinstance(value, str) or not value:
        return None
    braze_style = _BRAZE_TIME.fullmatch(value)
    candidates = [f"{braze_style[1]}.{braze_style[2]}+00:00"] if braze_style else [value]
    candidates.append(value.replace(" ", "T", 1))
    for candidate in candidates:
        try:
            return datetime.fromisoformat(candidate)
        except ValueError:
            continue
    try:
        return datetime.strptime(value, "%m/%d/%Y")
    except ValueError:
        return None


def _iso_8601_error(value: Any) -> str | None:
    if isinstance(value, str):
        try:
            datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return None
    return "'time' must be an ISO 8601 time"


def _properties_error(properties: Any) -> str | None:
    if properties is None:
        return None
    if not isinstance(properties, dict):
        return "'properties' must be an object"
    if len(properties) > MAX_EVENT_PROPERTIES:
        return f"at most {MAX_EVENT_PROPERTIES} properties are allowed"
    for key, value in properties.items():
        if not 1 <= len(key) <= MAX_STRING_LENGTH or key.startswith("$"):
            return f"invalid property name '{key[:MAX_STRING_LENGTH]}'"
        if key in _RESERVED_EVENT_PROPERTIES:
            return f"property name '{key}' is reserved"
        if isinstance(value, str) and len(value) > MAX_STRING_LENGTH:
            return f"property '{key}' is longer than {MAX_STRING_LENGTH} characters"
        if isinstance(value, list | dict) and _size_error(key, value) is not None:
            return f"property '{key}' is larger than 100 KB"
    return None


def event_object_error(obj: object) -> str | None:
    """Validate one object of the ``events`` array."""
    error = _object_basics_error(obj)
    if error is not None:
        return error
    assert isinstance(obj, dict)
    name = obj.get("name")
    if not isinstance(name, str) or not name or len(name) > MAX_STRING_LENGTH:
        return "'name' is required"
    if "app_id" in obj and not isinstance(obj["app_id"], str):
        return "'app_id' must be a string"
    return _iso_8601_error(obj.get("time")) or _properties_error(obj.get("properties"))


def purchase_object_error(obj: object) -> str | None:
    """Validate one object of the ``purchases`` array."""
    error = _object_basics_error(obj)
    if error is not None:
        return error
    assert isinstance(obj, dict)
    product_id = obj.get("product_id")
    if not isinstance(product_id, str) or not product_id or len(product_id) > MAX_STRING_LENGTH:
        return "'product_id' is required"
    currency = obj.get("currency")
    if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency):
        return "'currency' must be an ISO 4217 code"
    if not _is_number(obj.get("price")):
        return "'price' must be a number"
    quantity = obj.get("quantity", 1)
    if not isinstance(quantity, int) or isinstance(quantity, bool) or not 1 <= quantity <= 100:
        return "'quantity' must be an integer from 1 to 100"
    return _iso_8601_error(obj.get("time")) or _properties_error(obj.get("properties"))


_OBJECT_VALIDATORS: Final[dict[str, Callable[[object], str | None]]] = {
    "attributes": attribute_object_error,
    "events": event_object_error,
    "purchases": purchase_object_error,
}


def track_request_problem(
    payload: Mapping[str, Any], *, max_updates: int | None
) -> dict[str, Any] | None:
    """Request-level checks of a ``/users/track`` body: the 400 answer, or None to go on."""
    for name in TRACK_ARRAYS:
        if name in payload and not isinstance(payload[name], list):
            return {"message": f"'{name}' must be an array"}
    counts = {name: len(payload.get(name) or []) for name in TRACK_ARRAYS}
    if not any(counts.values()):
        return {"message": NO_DATA_MESSAGE}
    too_many = [
        {"type": f"{count} objects, at most {MAX_OBJECTS_PER_ARRAY}", "input_array": name}
        for name, count in counts.items()
        if count > MAX_OBJECTS_PER_ARRAY
    ]
    if too_many:
        return {"message": MAX_INPUT_MESSAGE, "errors": too_many}
    total = sum(counts.values())
    if max_updates is not None and total > max_updates:
        detail = f"{total} updates in one request, at most {max_updates}"
        return {"message": MAX_INPUT_MESSAGE, "errors": [{"type": detail}]}
    return None


def transactional_problem(payload: Mapping[str, Any]) -> str | None:
    """Validate a transactional send body; the 400 message, or None when it is valid."""
    recipient = payload.get("recipient")
    if not isinstance(recipient, dict):
        return "'recipient' is required"
    given = [key for key in ("external_user_id", "user_alias") if key in recipient]
    if len(given) != 1:
        return "'recipient' needs exactly one of 'external_user_id' or 'user_alias'"
    if given == ["user_alias"]:
        alias = _alias_identity(recipient["user_alias"])
        if isinstance(alias, str):
            return alias
    elif not isinstance(recipient["external_user_id"], str) or not recipient["external_user_id"]:
        return "'external_user_id' must be a non-empty string"
    attributes = recipient.get("attributes", {})
    if not isinstance(attributes, dict):
        return "'recipient.attributes' must be an object"
    for key, value in attributes.items():
        error = attribute_error(key, value)
        if error is not None:
            return error
    if not isinstance(payload.get("trigger_properties", {}), dict):
        return "'trigger_properties' must be an object"
    send_id = payload.get("external_send_id")
    if send_id is not None and not (
        isinstance(send_id, str) and _EXTERNAL_SEND_ID.fullmatch(send_id)
    ):
        return "'external_send_id' must match ^[a-zA-Z0-9-_+/=]+$"
    return None


# --------------------------------------------------------------------------------------------
# Profiles


@dataclass
class Profile:
    """One Braze user as the sandbox keeps it."""

    braze_id: str
    created_at: float
    updated_at: float
    touched: int
    external_id: str | None = None
    aliases: dict[str, str] = field(default_factory=dict)  # label → name
    attributes: dict[str, Any] = field(default_factory=dict)
    subscription_groups: dict[str, str] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    purchases: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready copy of the profile."""
        return copy.deepcopy(
            {
                "braze_id": self.braze_id,
                "identifiers": {
                    "braze_id": self.braze_id,
                    "external_id": self.external_id,
                    "user_aliases": [
                        {"alias_name": name, "alias_label": label}
                        for label, name in self.aliases.items()
                    ],
                    "email": self.attributes.get("email"),
                    "phone": self.attributes.get("phone"),
                },
                "attributes": self.attributes,
                "subscription_groups": self.subscription_groups,
                "events": self.events,
                "purchases": self.purchases,
                "created_at": _iso(self.created_at),
                "updated_at": _iso(self.updated_at),
            }
        )


def _email_key(value: object) -> str | None:
    return value.strip().lower() if isinstance(value, str) else None


def _phone_key(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    digits = "".join(c for c in value if c.isdigit())
    return digits.lstrip("0") or None


class ProfileStore:
    """Profiles keyed by identity, with Braze's lookup rules for email and phone."""

    def __init__(self) -> None:
        self._profiles: list[Profile] = []
        self._touches = itertools.count(1)

    def __len__(self) -> int:
        return len(self._profiles)

    def all(self) -> list[Profile]:
        return list(self._profiles)

    def find(self, identity: Identity) -> Profile | None:
        """The profile ``identity`` addresses. For email/phone: among the matches, the most
        recently updated one with an external_id, else the most recently updated one."""
        if identity.kind == "external_id":
            return self._first(lambda p: p.external_id == identity.value)
        if identity.kind == "braze_id":
            return self._first(lambda p: p.braze_id == identity.value)
        if identity.kind == "user_alias":
            return self._first(lambda p: p.aliases.get(identity.label) == identity.value)
        key_of = _email_key if identity.kind == "email" else _phone_key
        wanted = key_of(identity.value)
        matches = [p for p in self._profiles if key_of(p.attributes.get(identity.kind)) == wanted]
        preferred = [p for p in matches if p.external_id is not None] or matches
        return max(preferred, key=lambda p: p.touched, default=None)

    def create(self, identity: Identity, now: float) -> Profile:
        """A new profile carrying ``identity`` (never called for braze_id)."""
        profile = Profile(braze_id=uuid.uuid4().hex[:24], created_at=now, updated_at=now, touched=0)
        if identity.kind == "external_id":
            profile.external_id = identity.value
        elif identity.kind == "user_alias":
            profile.aliases[identity.label] = identity.value
        else:
            profile.attributes[identity.kind] = identity.value
        self.touch(profile, now)
        self._profiles.append(profile)
        return profile

    def touch(self, profile: Profile, now: float) -> None:
        profile.updated_at = now
        profile.touched = next(self._touches)

    def clear(self) -> None:
        self._profiles.clear()

    def _first(self, predicate: Callable[[Profile], bool]) -> Profile | None:
        return next((p for p in self._profiles if predicate(p)), None)


def creation_refusal(identity: Identity, update_only: object, array: str) -> str | None:
    """Why a missing profile is not created (None = create it), per braze-api.md §1."""
    if identity.kind == "braze_id":
        return "braze_id unknown (braze_id never creates)"
    if identity.kind == "user_alias":
        # Braze: update-only defaults to true for aliases, and is always true for events/purchases.
        if array != "attributes" or update_only is not False:
            return "alias update-only"
        return None
    return "_update_existing_only" if update_only is True else None


def apply_attributes(
    profile: Profile, obj: Mapping[str, Any], *, array_limit: int, notes: list[str]
) -> None:
    """Apply one valid attributes object to ``profile`` with Braze's value semantics."""
    merge = obj.get("_merge_objects") is True
    for key, value in obj.items():
        if key in _CONTROL_KEYS:
            continue
        if key == "subscription_groups":
            for group in value:
                profile.subscription_groups[group["subscription_group_id"]] = group[
                    "subscription_state"
                ]
        elif key == "time_zone" and value is not None and not _known_time_zone(value):
            notes.append(f"time_zone {value!r} ignored (not an IANA name)")
        else:
            apply_value(profile.attributes, key, value, merge=merge, array_limit=array_limit)


def _known_time_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (KeyError, ValueError, OSError):  # ZoneInfoNotFoundError is a KeyError
        return False
    return True


def apply_value(
    attributes: dict[str, Any], key: str, value: Any, *, merge: bool, array_limit: int
) -> None:
    """Set, unset, increment, add to, remove from or merge ``attributes[key]``."""
    current = attributes.get(key)
    if value is None:
        attributes.pop(key, None)
    elif isinstance(value, list):
        attributes[key] = _set_array(value, array_limit)
    elif isinstance(value, dict) and set(value) == {"inc"}:
        base = current if _is_number(current) else 0
        attributes[key] = base + value["inc"]
    elif isinstance(value, dict) and value and set(value) <= {"add", "remove"}:
        attributes[key] = _change_array(current, value, array_limit)
    elif isinstance(value, dict) and value and set(value) <= {"$add", "$remove", "$update"}:
        attributes[key] = _change_object_array(current, value)
    elif isinstance(value, dict) and merge and isinstance(current, dict):
        attributes[key] = _deep_merge(current, value)
    else:
        attributes[key] = copy.deepcopy(value)


def _set_array(items: list[Any], limit: int) -> list[Any]:
    if items and all(isinstance(item, dict) for item in items):
        return copy.deepcopy(items)
    result: list[Any] = []
    for item in items:
        _move_to_end(result, item)
    return result[-limit:]


def _move_to_end(items: list[Any], item: Any) -> None:
    if item in items:
        items.remove(item)
    items.append(item)


def _change_array(current: Any, change: Mapping[str, list[Any]], limit: int) -> list[Any]:
    items = (
        [item for item in current if not isinstance(item, dict)]
        if isinstance(current, list)
        else []
    )
    for item in change.get("add", []):
        _move_to_end(items, item)
    removed = change.get("remove", [])
    items = [item for item in items if item not in removed]
    return items[-limit:]


def _change_object_array(current: Any, change: Mapping[str, list[dict[str, Any]]]) -> list[Any]:
    items = (
        [dict(item) for item in current if isinstance(item, dict)]
        if isinstance(current, list)
        else []
    )

    def matches(item: dict[str, Any], selector: dict[str, Any]) -> bool:
        return item.get(selector["$identifier_key"]) == selector["$identifier_value"]

    for selector in change.get("$remove", []):
        items = [item for item in items if not matches(item, selector)]
    for selector in change.get("$update", []):
        items = [
            _deep_merge(item, selector["$new_object"]) if matches(item, selector) else item
            for item in items
        ]
    items.extend(copy.deepcopy(change.get("$add", [])))
    return items


def _deep_merge(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(dict(base))
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and "$time" not in value:
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _append_capped(history: list[dict[str, Any]], item: dict[str, Any]) -> None:
    history.append(item)
    del history[:-_PROFILE_HISTORY_LIMIT]


def apply_event(profile: Profile, obj: Mapping[str, Any]) -> None:
    """Record one valid event on ``profile`` (Braze does not deduplicate events)."""
    event = {"name": obj["name"], "time": obj["time"], "properties": obj.get("properties") or {}}
    if "app_id" in obj:
        event["app_id"] = obj["app_id"]
    _append_capped(profile.events, copy.deepcopy(event))


def apply_purchase(profile: Profile, obj: Mapping[str, Any]) -> None:
    """Record one valid purchase on ``profile``."""
    keys = ("product_id", "currency", "price", "quantity", "time", "properties")
    purchase = {key: obj[key] for key in keys if key in obj}
    purchase.setdefault("quantity", 1)
    _append_capped(profile.purchases, copy.deepcopy(purchase))


# --------------------------------------------------------------------------------------------
# Request handling (HTTP-free, so it can be driven by the server or by tests directly)


@dataclass(frozen=True)
class Reply:
    """One HTTP answer. ``payload`` is JSON data, or HTML text when ``content_type`` says so."""

    status: int
    payload: Any
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str = "application/json"

    def body(self) -> bytes:
        if isinstance(self.payload, str):
            return self.payload.encode("utf-8")
        return json.dumps(self.payload, default=str).encode("utf-8")


class ApiRequest(NamedTuple):
    """A Braze API request as read from the wire. ``body`` is None when it was over 4 MiB."""

    route: str  # "track" or "send"
    path: str
    campaign_id: str
    authorization: str | None
    body: bytes | None
    size: int


_DROP: Final = object()


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json_object(raw: bytes) -> tuple[dict[str, Any] | None, str]:
    """Parse a request body; ``(object, "")`` or ``(None, reason)``."""
    try:
        payload = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None, "Invalid JSON in request body"
    if not isinstance(payload, dict):
        return None, "Request body must be a JSON object"
    return payload, ""


def _injected_reply(status: int) -> Reply:
    messages = {
        401: "Invalid API key: (injected)",
        403: "Access Denied",
        429: RATE_LIMIT_MESSAGE,
    }
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Injected failure"
    headers = {"Location": "https://example.invalid/"} if 300 <= status < 400 else {}
    return Reply(status, {"message": messages.get(status, phrase)}, headers)


class SandboxState:
    """Everything the sandbox knows, behind one lock: config, request log, profiles, sends."""

    def __init__(self, config: SandboxConfig) -> None:
        self._lock = threading.Lock()
        self._initial_config = config
        self._config = config
        self._random = random.Random()
        self._log: deque[dict[str, Any]] = deque(maxlen=config.log_limit)
        self._sequence = itertools.count(1)
        self._profiles = ProfileStore()
        self._sends: deque[dict[str, Any]] = deque(maxlen=_SENDS_LIMIT)
        self._send_ids: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}
        self._window_start: float | None = None
        self._window_count = 0

    # ---- settings and inspection

    def config(self) -> dict[str, Any]:
        with self._lock:
            return self._config.public()

    def configure(self, changes: Mapping[str, object]) -> dict[str, Any]:
        """Apply ``changes`` atomically (all or nothing) and return the public config."""
        with self._lock:
            self._set_config(self._config.updated(changes))
            return self._config.public()

    def reset(self, *, config: bool = False) -> None:
        """Forget requests, profiles, sends and the rate window; optionally restore the config."""
        with self._lock:
            self._log.clear()
            self._profiles.clear()
            self._sends.clear()
            self._send_ids.clear()
            self._window_start, self._window_count = None, 0
            if config:
                self._set_config(self._initial_config)

    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(list(self._log))

    def profiles(self) -> list[dict[str, Any]]:
        with self._lock:
            return [profile.as_dict() for profile in self._profiles.all()]

    def sends(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(list(self._sends))

    def find_profile(self, identity: Identity) -> dict[str, Any] | None:
        with self._lock:
            profile = self._profiles.find(identity)
            return profile.as_dict() if profile else None

    def stats(self) -> dict[str, Any]:
        with self._lock:
            by_status: dict[str, int] = {}
            for entry in self._log:
                status = str(entry["status"]) if entry["status"] is not None else "dropped"
                by_status[status] = by_status.get(status, 0) + 1
            return {
                "requests": len(self._log),
                "by_status": by_status,
                "profiles": len(self._profiles),
                "sends": len(self._sends),
            }

    def latency_seconds(self) -> float:
        with self._lock:
            jitter = self._random.uniform(0, self._config.latency_jitter_ms)
            return (self._config.latency_ms + jitter) / 1000.0

    def _set_config(self, config: SandboxConfig) -> None:
        if config.log_limit != self._config.log_limit:
            self._log = deque(self._log, maxlen=config.log_limit)
        self._config = config

    # ---- the API

    def handle(self, request: ApiRequest) -> Reply | None:
        """Answer one Braze API request; None means: drop the connection without answering."""
        now = time.time()
        with self._lock:
            entry = self._new_entry(request, now)
            reply = self._dispatch(request, entry, now)
            if reply is not None and request.route == "track":
                reply = self._with_rate_headers(reply, now)
            if reply is not None:
                entry["status"], entry["response"] = reply.status, reply.payload
                entry["response_headers"] = dict(reply.headers)
            self._log.append(entry)
            return copy.deepcopy(reply)

    def _new_entry(self, request: ApiRequest, now: float) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "id": next(self._sequence),
            "time": _iso(now),
            "method": "POST",
            "path": request.path,
            "status": None,
            "key_last4": "",
            "bytes": request.size,
            "body": None,
            "response": None,
            "response_headers": {},
            "counts": {},
            "notes": [],
        }
        if request.body is None or request.size > _KEEP_BODY_LIMIT:
            entry["notes"].append(f"body not kept ({request.size} bytes)")
            return entry
        payload, problem = parse_json_object(request.body)
        if payload is None:
            entry["body_text"] = request.body[:2000].decode("utf-8", errors="replace")
            return entry
        if "api_key" in payload:  # the legacy way of sending the key; never keep it
            payload["api_key"] = "[redacted]"
        entry["body"] = payload
        entry["counts"] = {
            name: len(payload[name]) for name in TRACK_ARRAYS if isinstance(payload.get(name), list)
        }
        return entry

    def _dispatch(self, request: ApiRequest, entry: dict[str, Any], now: float) -> Reply | None:
        fault = self._take_fault()
        if fault is _DROP:
            entry["notes"].append("connection dropped (injected)")
            return None
        if isinstance(fault, Reply):
            entry["notes"].append("failure injected")
            return fault
        if request.body is None:
            return Reply(413, {"message": "Request body exceeds the 4 MB limit"})
        key, refusal = self._authenticate(request.authorization)
        entry["key_last4"] = mask_key(key)
        if refusal is not None:
            return refusal
        if request.route == "track":
            return self._track(request.body, entry["notes"], now)
        return self._send(request.campaign_id, request.body, entry["notes"], now)

    def _take_fault(self) -> Reply | object | None:
        config = self._config
        if config.drop_next:
            self._config = dataclasses.replace(config, drop_next=config.drop_next - 1)
            return _DROP
        if config.status_next:
            self._config = dataclasses.replace(config, status_next=config.status_next[1:])
            return _injected_reply(config.status_next[0])
        if config.fail_next:
            self._config = dataclasses.replace(config, fail_next=config.fail_next - 1)
            return _injected_reply(500)
        if config.drop_rate and self._random.random() < config.drop_rate:
            return _DROP
        if config.fail_rate and self._random.random() < config.fail_rate:
            return _injected_reply(self._random.choice((500, 502, 503)))
        return None

    def _authenticate(self, header: str | None) -> tuple[str, Reply | None]:
        """The key sent (for masking) and the refusal, or None when the key may track users."""
        scheme, _space, key = (header or "").strip().partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            return "", Reply(401, {"message": "Invalid API key: missing Bearer token"})
        if key[0] in "\"'" or key[-1] in "\"'":
            return key, Reply(401, {"message": "Invalid API key: the key must not be quoted"})
        config = self._config
        if key in config.forbidden_keys:
            return key, Reply(403, {"message": "Access Denied"})
        if key not in config.api_keys and not config.accept_any_key:
            return key, Reply(401, {"message": f"Invalid API key: ****{mask_key(key)}"})
        return key, None

    def _consume_rate(self, now: float) -> bool:
        config = self._config
        if self._window_start is None or now >= self._window_start + config.rate_window:
            self._window_start, self._window_count = now, 0
        if self._window_count >= config.rate_limit:
            return False
        self._window_count += 1
        return True

    def _with_rate_headers(self, reply: Reply, now: float) -> Reply:
        config = self._config
        start = self._window_start
        if start is None or now >= start + config.rate_window:
            remaining, reset = config.rate_limit, now + config.rate_window
        else:
            remaining, reset = config.rate_limit - self._window_count, start + config.rate_window
        if reply.status == 429:
            remaining = 0
        headers = {
            "X-RateLimit-Limit": str(config.rate_limit),
            "X-RateLimit-Remaining": str(max(0, remaining)),
            "X-RateLimit-Reset": str(math.ceil(reset)),
            **reply.headers,
        }
        return dataclasses.replace(reply, headers=headers)

    def _track(self, body: bytes, notes: list[str], now: float) -> Reply:
        if not self._consume_rate(now):
            return Reply(429, {"message": RATE_LIMIT_MESSAGE})
        payload, problem = parse_json_object(body)
        if payload is None:
            return Reply(400, {"message": problem})
        refusal = track_request_problem(payload, max_updates=self._config.max_updates_per_request)
        if refusal is not None:
            return Reply(400, refusal)
        response: dict[str, Any] = {"message": "success"}
        errors: list[dict[str, Any]] = []
        for name in TRACK_ARRAYS:
            if name in payload:
                response[f"{name}_processed"] = self._apply_array(
                    name, payload[name], errors, notes, now
                )
        if errors:
            response["errors"] = errors
        return Reply(201, response)

    def _apply_array(
        self,
        name: str,
        objects: list[Any],
        errors: list[dict[str, Any]],
        notes: list[str],
        now: float,
    ) -> int:
        processed = 0
        for index, obj in enumerate(objects):
            error = _OBJECT_VALIDATORS[name](obj)
            if error is not None:
                errors.append({"type": error, "input_array": name, "index": index})
                continue
            processed += 1
            object_notes: list[str] = []
            self._apply_object(name, obj, object_notes, now)
            notes.extend(f"{name}[{index}]: {note}" for note in object_notes)
        return processed

    def _apply_object(self, array: str, obj: dict[str, Any], notes: list[str], now: float) -> None:
        identity = identity_of(obj)
        assert isinstance(identity, Identity)
        profile = self._profiles.find(identity)
        if profile is None:
            refusal = creation_refusal(identity, obj.get("_update_existing_only"), array)
            if refusal is not None:
                notes.append(f"not created: {refusal}")
                return
            profile = self._profiles.create(identity, now)
            notes.append(f"created profile {profile.braze_id}")
        if array == "attributes":
            apply_attributes(profile, obj, array_limit=self._config.array_limit, notes=notes)
        elif array == "events":
            apply_event(profile, obj)
        else:
            apply_purchase(profile, obj)
        self._profiles.touch(profile, now)

    def _send(self, campaign_id: str, body: bytes, notes: list[str], now: float) -> Reply:
        payload, problem = parse_json_object(body)
        if payload is None:
            return Reply(400, {"message": problem})
        problem = transactional_problem(payload)
        if problem is not None:
            return Reply(400, {"message": problem})
        self._forget_old_send_ids(now)
        send_id = payload.get("external_send_id")
        if send_id is not None and (campaign_id, send_id) in self._send_ids:
            notes.append("duplicate external_send_id: not sent again")
            return Reply(201, copy.deepcopy(self._send_ids[(campaign_id, send_id)][1]))
        self._apply_recipient(payload["recipient"], notes, now)
        response = {
            "dispatch_id": uuid.uuid4().hex,
            "status": "queued",
            "metadata": {"is_test_send": False, "type": "transactional"},
        }
        if send_id is not None:
            self._send_ids[(campaign_id, send_id)] = (now, copy.deepcopy(response))
        self._sends.append(
            {
                "time": _iso(now),
                "campaign_id": campaign_id,
                "dispatch_id": response["dispatch_id"],
                "external_send_id": send_id,
                "recipient": copy.deepcopy(payload["recipient"]),
                "trigger_properties": copy.deepcopy(payload.get("trigger_properties") or {}),
            }
        )
        return Reply(201, response)

    def _forget_old_send_ids(self, now: float) -> None:
        expired = [
            key
            for key, (sent_at, _response) in self._send_ids.items()
            if now - sent_at >= TRANSACTIONAL_DEDUP_SECONDS
        ]
        for key in expired:
            del self._send_ids[key]

    def _apply_recipient(self, recipient: dict[str, Any], notes: list[str], now: float) -> None:
        """Write the recipient's attributes first; they create the user if it is new."""
        if "user_alias" in recipient:
            alias = recipient["user_alias"]
            identity = Identity("user_alias", alias["alias_name"], alias["alias_label"])
        else:
            identity = Identity("external_id", recipient["external_user_id"])
        profile = self._profiles.find(identity)
        attributes = recipient.get("attributes") or {}
        if profile is None:
            if not attributes:
                notes.append("recipient has no profile (no attributes to create one)")
                return
            profile = self._profiles.create(identity, now)
            notes.append(f"created profile {profile.braze_id}")
        apply_attributes(profile, attributes, array_limit=self._config.array_limit, notes=notes)
        self._profiles.touch(profile, now)


# --------------------------------------------------------------------------------------------
# Inspection page


def _pretty(value: Any) -> str:
    return escape(json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str))


def _render_request(entry: Mapping[str, Any]) -> str:
    response = entry.get("response") or {}
    errors = response.get("errors") if isinstance(response, dict) else None
    counts = ", ".join(f"{name}: {count}" for name, count in entry.get("counts", {}).items())
    body = entry["body"] if entry.get("body") is not None else entry.get("body_text", "")
    status = entry["status"] if entry["status"] is not None else _("dropped")
    key = f"…{entry['key_last4']}" if entry.get("key_last4") else ""
    notes = "".join(f"<li>{escape(note)}</li>" for note in entry.get("notes", []))
    return (
        f"<tr><td>{escape(entry['time'])}</td><td>{escape(entry['path'])}</td>"
        f"<td>{escape(status)}</td><td>{escape(key)}</td><td>{escape(counts)}</td>"
        f"<td>{_pretty(errors) if errors else ''}<ul>{notes}</ul></td>"
        f"<td><details><summary>{escape(_('body'))}</summary><pre>{_pretty(body)}</pre>"
        f"<pre>{_pretty(response)}</pre></details></td></tr>"
    )


def _render_profile(profile: Mapping[str, Any]) -> str:
    events = [f"{e['time']} {e['name']}" for e in profile["events"][-20:]]
    return (
        f"<tr><td><pre>{_pretty(profile['identifiers'])}</pre></td>"
        f"<td><pre>{_pretty(profile['attributes'])}</pre>"
        f"<pre>{_pretty(profile['subscription_groups'])}</pre></td>"
        f"<td>{'<br>'.join(escape(line) for line in events)}</td>"
        f"<td>{escape(len(profile['purchases']))}</td>"
        f"<td>{escape(profile['updated_at'])}</td></tr>"
    )


def render_page(requests: list[dict[str, Any]], profiles: list[dict[str, Any]]) -> str:
    """The ``/_sandbox/`` page: newest requests and profiles first, every value escaped."""
    request_rows = "".join(_render_request(e) for e in reversed(requests[-_PAGE_REQUESTS:]))
    newest_profiles = sorted(profiles, key=lambda p: p["updated_at"], reverse=True)
    profile_rows = "".join(_render_profile(p) for p in newest_profiles[:_PAGE_PROFILES])
    request_headings = (
        _("Time"),
        _("Path"),
        _("Status"),
        _("Key"),
        _("Objects"),
        _("Errors and notes"),
        "",
    )
    profile_headings = (
        _("Identifiers"),
        _("Attributes"),
        _("Events"),
        _("Purchases"),
        _("Updated"),
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<meta http-equiv='refresh' content='2'>"
        f"<title>{escape(_('Braze sandbox'))}</title>"
        "<style>body{font-family:sans-serif;margin:1em}table{border-collapse:collapse;width:100%}"
        "td,th{border:1px solid #ccc;padding:4px;vertical-align:top;text-align:left}"
        "pre{margin:0;white-space:pre-wrap;max-width:60em}</style></head><body>"
        f"<h1>{escape(_('Braze sandbox'))}</h1>"
        f"<h2>{escape(_('Requests'))} ({len(requests)})</h2>"
        f"{_table(request_headings, request_rows, _('No requests yet.'))}"
        f"<h2>{escape(_('Profiles'))} ({len(profiles)})</h2>"
        f"{_table(profile_headings, profile_rows, _('No profiles yet.'))}"
        "</body></html>"
    )


def _table(headings: Iterable[str], rows: str, empty: str) -> str:
    if not rows:
        return f"<p>{escape(empty)}</p>"
    head = "".join(f"<th>{escape(h)}</th>" for h in headings)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


# --------------------------------------------------------------------------------------------
# HTTP


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], state: SandboxState) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.state = state
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn) that can stall start-up.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60
    # Headers and body go out in two writes; without TCP_NODELAY, delayed ACKs add ~40 ms each.
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_PUT(self) -> None:
        self._route("PUT")

    def do_DELETE(self) -> None:
        self._route("DELETE")

    def do_PATCH(self) -> None:
        self._route("PATCH")

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("braze sandbox: " + format, *args)

    def _route(self, method: str) -> None:
        path = urlsplit(self.path).path
        try:
            send = _SEND_PATH.fullmatch(path)
            if method == "POST" and (path == "/users/track" or send):
                self._api(path, unquote(send[1]) if send else "")
            elif path == "/_sandbox" or path.startswith("/_sandbox/"):
                self._inspect(method, path)
            else:
                self._read_small_body()
                self._write(Reply(404, {"message": "Not Found"}))
        except ConnectionError:
            # The client gave up first (e.g. its read timeout during injected latency).
            self.close_connection = True
            logger.debug("braze sandbox: client went away during %s %s", method, path)
        except Exception:
            logger.exception("braze sandbox: error while answering %s %s", method, path)
            self.close_connection = True
            with contextlib.suppress(OSError):
                self._write(Reply(500, {"message": "Sandbox internal error"}))

    def _api(self, path: str, campaign_id: str) -> None:
        state = self.server.state
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            self._write(Reply(411, {"message": "Length Required"}))
            return
        size = self._content_length()
        if size is None:
            self.close_connection = True
            self._write(Reply(400, {"message": "Invalid Content-Length"}))
            return
        body = self._read_api_body(size)
        delay = state.latency_seconds()
        if delay > 0:
            time.sleep(delay)
        route = "send" if campaign_id else "track"
        request = ApiRequest(
            route, path, campaign_id, self.headers.get("Authorization"), body, size
        )
        reply = state.handle(request)
        if reply is None:
            self._drop()
        else:
            self._write(reply)

    def _content_length(self) -> int | None:
        raw = self.headers.get("Content-Length", "0").strip()
        return int(raw) if raw.isdigit() else None

    def _read_api_body(self, size: int) -> bytes | None:
        if size <= MAX_BODY_BYTES:
            return self.rfile.read(size)
        if size > _DRAIN_LIMIT:
            self.close_connection = True
            return None
        remaining = size
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 1024 * 1024))
            if not chunk:
                break
            remaining -= len(chunk)
        return None

    def _read_small_body(self) -> bytes:
        size = self._content_length()
        if size is None or size > _INSPECT_BODY_LIMIT:
            self.close_connection = True
            return b""
        return self.rfile.read(size) if size else b""

    def _inspect(self, method: str, path: str) -> None:
        state = self.server.state
        body = self._read_small_body()
        route = path.removeprefix("/_sandbox").strip("/")
        getters: dict[str, Callable[[], Any]] = {
            "api/requests": state.requests,
            "api/profiles": state.profiles,
            "api/sends": state.sends,
            "api/stats": state.stats,
            "api/config": state.config,
        }
        if method == "GET" and route == "":
            page = render_page(state.requests(), state.profiles())
            self._write(Reply(200, page, _PAGE_HEADERS, "text/html; charset=utf-8"))
        elif method == "GET" and route in getters:
            self._write(Reply(200, getters[route]()))
        elif method == "POST" and route in ("api/config", "api/reset"):
            self._write(self._inspect_post(route, body))
        else:
            self._write(Reply(404, {"message": "Not Found"}))

    def _inspect_post(self, route: str, body: bytes) -> Reply:
        state = self.server.state
        payload, problem = parse_json_object(body) if body.strip() else ({}, "")
        if payload is None:
            return Reply(400, {"message": problem})
        if route == "api/reset":
            state.reset(config=payload.get("config") is True)
            return Reply(200, {"status": "reset", "config": state.config()})
        try:
            return Reply(200, state.configure(payload))
        except SandboxConfigError as exc:
            return Reply(400, {"message": str(exc)})

    def _write(self, reply: Reply) -> None:
        body = reply.body()
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):  # the client may already be gone
            self.connection.shutdown(socket.SHUT_RDWR)


_PAGE_HEADERS: Final = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


# --------------------------------------------------------------------------------------------
# Public facade


class BrazeSandbox:
    """A Braze look-alike listening on ``host:port`` (port 0 picks a free one).

    Use as ``with BrazeSandbox(api_keys={"k"}) as sandbox: ...`` or ``start()``/``stop()``;
    ``serve_forever()`` serves in the calling thread instead. ``**config`` takes any
    ``SandboxConfig`` setting (``rate_limit``, ``fail_rate``, ``latency_ms``, …).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 9400,
        api_keys: Iterable[str] = (),
        forbidden_keys: Iterable[str] = (),
        accept_any_key: bool = False,
        **config: Any,
    ) -> None:
        settings = SandboxConfig().updated(
            {
                "api_keys": tuple(api_keys),
                "forbidden_keys": tuple(forbidden_keys),
                "accept_any_key": accept_any_key,
                **config,
            }
        )
        self.host = host
        self._requested_port = port
        self._state = SandboxState(settings)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._serving_in_caller = threading.Event()

    @property
    def port(self) -> int:
        """The bound port (the requested one until the server is bound)."""
        return self._server.server_address[1] if self._server else self._requested_port

    @property
    def url(self) -> str:
        """Base URL to use as the Braze REST endpoint, e.g. ``http://127.0.0.1:9400``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> BrazeSandbox:
        """Bind and serve in a daemon thread; returns self. Raises OSError if the port is taken."""
        server = self._bind()
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"braze-sandbox-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Bind (if needed) and serve in the calling thread until ``KeyboardInterrupt`` or until
        ``stop()`` is called from another thread."""
        server = self._server or self._bind()
        self._serving_in_caller.set()
        try:
            server.serve_forever(poll_interval=0.05)
        finally:
            self._serving_in_caller.clear()
            self._close()

    def stop(self) -> None:
        """Stop serving and release the port. Safe to call more than once."""
        server, thread = self._server, self._thread
        if server is None:
            return
        # shutdown() waits for the serving loop, so only call it when one runs (or is starting).
        if thread is not None or self._serving_in_caller.is_set():
            server.shutdown()
        if thread is not None:
            thread.join(timeout=5)
        self._close()

    def __enter__(self) -> BrazeSandbox:
        return self if self.running else self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def requests(self) -> list[dict[str, Any]]:
        """The request log, oldest first (copies)."""
        return self._state.requests()

    def profiles(self) -> list[dict[str, Any]]:
        """All profiles as JSON-ready dicts (copies)."""
        return self._state.profiles()

    def sends(self) -> list[dict[str, Any]]:
        """Transactional sends, oldest first (duplicates by external_send_id are not listed)."""
        return self._state.sends()

    def stats(self) -> dict[str, Any]:
        """Counts: requests, by_status, profiles, sends."""
        return self._state.stats()

    def find_profile(self, **identifier: Any) -> dict[str, Any] | None:
        """The profile for exactly one of ``external_id``, ``braze_id``, ``email``, ``phone``,
        ``user_alias={"alias_name", "alias_label"}`` (or ``alias_name`` + ``alias_label``)."""
        if set(identifier) == {"alias_name", "alias_label"}:
            identifier = {"user_alias": identifier}
        identity = identity_of(identifier) if len(identifier) == 1 else None
        if not isinstance(identity, Identity):
            raise ValueError(f"not one valid identifier: {sorted(identifier)}")
        return self._state.find_profile(identity)

    def config(self) -> dict[str, Any]:
        """The current settings, keys masked."""
        return self._state.config()

    def configure(self, **changes: Any) -> dict[str, Any]:
        """Change settings at runtime (all or nothing); returns the new settings, keys masked."""
        return self._state.configure(changes)

    def reset(self, *, config: bool = False) -> None:
        """Forget requests, profiles and sends; with ``config=True`` also restore the settings."""
        self._state.reset(config=config)

    def _bind(self) -> _Server:
        if self._server is not None:
            raise RuntimeError("the sandbox is already running")
        self._server = _Server((self.host, self._requested_port), self._state)
        return self._server

    def _close(self) -> None:
        server, self._server, self._thread = self._server, None, None
        if server is not None:
            server.server_close()

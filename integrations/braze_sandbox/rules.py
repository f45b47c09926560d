"""Braze's request rules for the sandbox, as pure functions: identifiers, attribute, event and
purchase checks, request-level limits and transactional send bodies.

Each ``*_error``/``*_problem`` function returns Braze-style error text (or the 400 answer), or None
when the input is valid. The rules are written from braze-api.md, deliberately not imported from
the portal's own modules, so a misunderstanding in the portal cannot hide behind the same
misunderstanding here. Where Braze's behaviour is UNCONFIRMED the stricter reading is taken.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any, Final, NamedTuple

MAX_OBJECTS_PER_ARRAY: Final = 75
MAX_STRING_LENGTH: Final = 255
MAX_EVENT_PROPERTIES: Final = 256
MAX_NESTED_BYTES: Final = 100 * 1024
MAX_ARRAY_LIMIT: Final = 100
TRACK_ARRAYS: Final = ("attributes", "events", "purchases")

NO_DATA_MESSAGE: Final = (
    "Valid data must be provided in the 'attributes', 'events', or 'purchases' fields."
)
MAX_INPUT_MESSAGE: Final = "Max Input Length Exceeded"
MISSING_IDENTIFIER: Final = (
    "'external_id' or 'braze_id' or 'user_alias' or 'email' or 'phone' is required"
)

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
CONTROL_KEYS: Final = frozenset(
    {
        "external_id",
        "user_alias",
        "braze_id",
        "_update_existing_only",
        "_merge_objects",
        "push_token_import",
    }
)


def is_number(value: object) -> bool:
    """A JSON number (``bool`` is not one, although Python thinks so)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def parse_json_object(raw: bytes) -> tuple[dict[str, Any] | None, str]:
    """Parse a request body; ``(object, "")`` or ``(None, reason)``."""
    try:
        payload = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None, "Invalid JSON in request body"
    if not isinstance(payload, dict):
        return None, "Request body must be a JSON object"
    return payload, ""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


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
        if key in CONTROL_KEYS:
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
        and is_number(value.get("longitude"))
        and is_number(value.get("latitude"))
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
    if value is None or isinstance(value, bool) or is_number(value):
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
        if not isinstance(item, str) and not is_number(item):
            return f"'{key}' must be an array of strings or an array of objects"
    return None


def _operation_error(key: str, value: dict[str, Any]) -> str | None:
    keys = set(value)
    if keys == {"inc"}:
        return None if is_number(value["inc"]) else f"'{key}' increment must be a number"
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
    if not is_number(obj.get("price")):
        return "'price' must be a number"
    quantity = obj.get("quantity", 1)
    if not isinstance(quantity, int) or isinstance(quantity, bool) or not 1 <= quantity <= 100:
        return "'quantity' must be an integer from 1 to 100"
    return _iso_8601_error(obj.get("time")) or _properties_error(obj.get("properties"))


OBJECT_VALIDATORS: Final[dict[str, Callable[[object], str | None]]] = {
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


MAX_DELETE_IDENTIFIERS: Final = 50
DELETE_KINDS: Final = ("external_ids", "user_aliases", "braze_ids", "email_addresses",
                       "phone_numbers")


def delete_request_problem(payload: Mapping[str, Any]) -> str | None:
    """Validate a ``/users/delete`` body (braze-api.md §10): exactly one kind of identifier, an
    array of 1 to 50 of them. The 400 message, or None when it is valid."""
    given = [kind for kind in DELETE_KINDS if kind in payload]
    if len(given) != 1:
        return "exactly one of " + ", ".join(f"'{kind}'" for kind in DELETE_KINDS) + " is required"
    kind = given[0]
    values = payload[kind]
    if not isinstance(values, list) or not values:
        return f"'{kind}' must be a non-empty array"
    if len(values) > MAX_DELETE_IDENTIFIERS:
        return f"{MAX_INPUT_MESSAGE}: at most {MAX_DELETE_IDENTIFIERS} {kind} per request"
    for value in values:
        if kind == "user_aliases":
            alias = _alias_identity(value)
            if isinstance(alias, str):
                return alias
        elif not isinstance(value, str) or not value.strip():
            return f"'{kind}' must hold non-empty strings"
    return None

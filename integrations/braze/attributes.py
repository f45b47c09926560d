"""Braze's standard user attributes and the identifier keys of a /users/track object.

Braze names are case-sensitive and never translated: a mis-cased standard name such as
``First_Name`` silently becomes a custom attribute (braze-api.md §4), so configuration validation
compares against these exact spellings.
"""

from __future__ import annotations

from typing import Final

# Standard attribute → the mapping value type that produces a value Braze accepts for it.
# None: Braze expects a structured object (location, push tokens, subscription groups, social
# profiles) that no single Komo field can produce, so no mapping may target it.
STANDARD_ATTRIBUTES: Final[dict[str, str | None]] = {
    "first_name": "string",
    "last_name": "string",
    "home_city": "string",
    "email": "email",
    "phone": "phone",
    "dob": "date",
    "country": "country",
    "language": "string",
    "gender": "gender",
    "email_subscribe": "subscription",
    "push_subscribe": "subscription",
    "time_zone": "string",
    "image_url": "string",
    "date_of_first_session": "date",
    "date_of_last_session": "date",
    "marked_email_as_spam_at": "date",
    "email_open_tracking_disabled": "boolean",
    "email_click_tracking_disabled": "boolean",
    "subscription_groups": None,
    "current_location": None,
    "push_tokens": None,
    "push_token_import": None,
    "facebook": None,
    "twitter": None,
}

# Keys that identify the user (or steer creation) in an attributes object; never mappable.
IDENTIFIER_KEYS: Final[frozenset[str]] = frozenset(
    {"external_id", "braze_id", "user_alias", "_update_existing_only"}
)

# Braze's limit for strings (custom attribute values, array items, attribute names).
MAX_STRING_LENGTH: Final = 255
# Braze keeps at most 100 items in an array attribute (default 25); overflow drops the oldest.
MAX_ARRAY_ITEMS: Final = 100

"""The sandbox's Braze users: the profile store with Braze's lookup and creation rules, and the
attribute semantics (``null`` unsets, ``inc``, ``add``/``remove``, array limit, nested merge).

Only valid objects reach this module; ``rules`` decides what is valid.
"""

from __future__ import annotations

import copy
import itertools
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from integrations.braze_sandbox.rules import CONTROL_KEYS, Identity, identity_of, is_number

_PROFILE_HISTORY_LIMIT: Final = 1000


def iso_time(timestamp: float) -> str:
    """``timestamp`` as an ISO 8601 UTC time with milliseconds."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds")


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
                "created_at": iso_time(self.created_at),
                "updated_at": iso_time(self.updated_at),
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

    def delete(self, kind: str, value: Any) -> int:
        """Delete the profiles a ``/users/delete`` identifier names; how many. By email or phone
        every profile sharing it goes (braze-api.md §10)."""
        if kind == "external_ids":
            doomed = [p for p in self._profiles if p.external_id == value]
        elif kind == "braze_ids":
            doomed = [p for p in self._profiles if p.braze_id == value]
        elif kind == "user_aliases":
            label, name = value.get("alias_label"), value.get("alias_name")
            doomed = [p for p in self._profiles if p.aliases.get(label) == name]
        else:
            attribute, key_of = (
                ("email", _email_key) if kind == "email_addresses" else ("phone", _phone_key)
            )
            wanted = key_of(value)
            doomed = [p for p in self._profiles
                      if wanted and key_of(p.attributes.get(attribute)) == wanted]
        self._profiles = [p for p in self._profiles if p not in doomed]
        return len(doomed)

    def apply_object(
        self,
        array: str,
        obj: Mapping[str, Any],
        *,
        array_limit: int,
        notes: list[str],
        now: float,
    ) -> None:
        """Apply one valid object of ``array`` to the profile it addresses, creating that profile
        when Braze would."""
        identity = identity_of(obj)
        assert isinstance(identity, Identity)
        profile = self.find(identity)
        if profile is None:
            refusal = creation_refusal(identity, obj.get("_update_existing_only"), array)
            if refusal is not None:
                notes.append(f"not created: {refusal}")
                return
            profile = self.create(identity, now)
            notes.append(f"created profile {profile.braze_id}")
        if array == "attributes":
            apply_attributes(profile, obj, array_limit=array_limit, notes=notes)
        elif array == "events":
            apply_event(profile, obj)
        else:
            apply_purchase(profile, obj)
        self.touch(profile, now)

    def apply_recipient(
        self, recipient: Mapping[str, Any], *, array_limit: int, notes: list[str], now: float
    ) -> None:
        """Write a transactional recipient's attributes; they create the user if it is new."""
        if "user_alias" in recipient:
            alias = recipient["user_alias"]
            identity = Identity("user_alias", alias["alias_name"], alias["alias_label"])
        else:
            identity = Identity("external_id", recipient["external_user_id"])
        profile = self.find(identity)
        attributes = recipient.get("attributes") or {}
        if profile is None:
            if not attributes:
                notes.append("recipient has no profile (no attributes to create one)")
                return
            profile = self.create(identity, now)
            notes.append(f"created profile {profile.braze_id}")
        apply_attributes(profile, attributes, array_limit=array_limit, notes=notes)
        self.touch(profile, now)

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
        if key in CONTROL_KEYS:
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
        base = current if is_number(current) else 0
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

"""Skipping attribute values Braze already has (``Hub.skip_unchanged``), to save data points.

Braze bills every attribute written, even when the value is the same (braze-api.md §1: "send only
changed values"). For a hub that asks for it, delivery drops each attribute whose value hash
equals the one last *accepted by Braze* for the same person, kept in ``DeliveredValue`` (hashes
only, never values). The rules:

* The identifier and Braze's control keys (``_update_existing_only``, ``_merge_objects``) are
  never dropped.
* Values that are operations or partial updates (objects such as ``{"inc": 1}``,
  ``{"add": [...]}`` or nested objects that merge) are never dropped: sending them again is not
  a no-op.
* An object left with nothing but its identifier is still sent when the hub creates users (that
  is what creates the profile) and skipped when it does not (it would do nothing).
* Hashes are written only after Braze accepted the request, so a failed or retried request never
  makes a value look delivered. Two workers racing on the same person can only lose a hash, which
  sends that value once more, never less.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from django.utils import timezone

from integrations import blind_index
from integrations.braze.attributes import IDENTIFIER_KEYS
from integrations.models import DeliveredValue

_ALIAS_TYPES = frozenset({"alias_email", "alias_phone"})


def identifier_name(identity_type: str) -> str:
    """The key of a Braze object that identifies the person for this identity type."""
    return "user_alias" if identity_type in _ALIAS_TYPES else identity_type


def person_key(attributes: Mapping[str, Any], identity_type: str) -> str | None:
    """A stable text for the person an attributes object is about; None without an identifier."""
    identifier = attributes.get(identifier_name(identity_type))
    if identifier is None:
        return None
    key = f"{identifier_name(identity_type)}:" + json.dumps(
        identifier, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    # Kept as a keyed hash: the table must not be a plain list of the hub's people.
    return blind_index.blind_hash("person", key)


def value_hash(value: Any) -> str | None:
    """A short hash of a plain value; None for values that must always be sent (operations)."""
    if isinstance(value, dict):
        return None
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return blind_index.short_digest(text)


def _kept(name: str, identity_type: str) -> bool:
    """Never dropped: the identifier and Braze's control keys (``_update_existing_only``,
    ``_merge_objects``: without it a later nested object would replace instead of merge)."""
    return name in IDENTIFIER_KEYS or name == identifier_name(identity_type) or name.startswith("_")


def hashes_of(attributes: Mapping[str, Any], identity_type: str) -> dict[str, str]:
    """The hashes worth remembering for an attributes object (no identifier, no operations)."""
    hashes = {}
    for name, value in attributes.items():
        digest = None if _kept(name, identity_type) else value_hash(value)
        if digest is not None:
            hashes[name] = digest
    return hashes


def unchanged_dropped(
    attributes: Mapping[str, Any],
    known: Mapping[str, str],
    *,
    identity_type: str,
    creates_users: bool,
) -> tuple[dict[str, Any] | None, int]:
    """The object without the values Braze already has, and how many were dropped.

    None instead of the object when nothing but the identifier is left and the hub does not
    create users (sending it would change nothing)."""
    reduced: dict[str, Any] = {}
    dropped = 0
    for name, value in attributes.items():
        digest = None if _kept(name, identity_type) else value_hash(value)
        if digest is not None and known.get(name) == digest:
            dropped += 1
            continue
        reduced[name] = value
    only_identifier = all(_kept(name, identity_type) for name in reduced)
    if only_identifier and dropped and not creates_users:
        return None, dropped
    return reduced, dropped


def known_hashes(*, hub_id: int, person_keys: Iterable[str]) -> dict[str, dict[str, str]]:
    """What was last delivered for these people of the hub (one query)."""
    keys = set(person_keys)
    if not keys:
        return {}
    rows = DeliveredValue.objects.filter(hub_id=hub_id, person_key__in=keys)
    return {row.person_key: dict(row.hashes) for row in rows.only("person_key", "hashes")}


def delivered_remember(
    *,
    hub_id: int,
    delivered: Mapping[str, Mapping[str, str]],
    known: Mapping[str, Mapping[str, str]],
) -> None:
    """Merge the hashes of values Braze just accepted into each person's row (one statement)."""
    if not delivered:
        return
    now = timezone.now()
    rows = [
        DeliveredValue(
            hub_id=hub_id,
            person_key=key,
            hashes={**known.get(key, {}), **hashes},
            updated_at=now,
        )
        for key, hashes in delivered.items()
    ]
    DeliveredValue.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["hub", "person_key"],
        update_fields=["hashes", "updated_at"],
    )

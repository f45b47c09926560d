"""Packing mapped submissions into one ``/users/track`` body (pure: no I/O, no ORM).

Rules (braze-api.md §1): at most 75 objects per array, at most 4 MB per body, and a submission's
objects are never split across requests, so a submission that does not fit waits for the next one.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

ARRAYS = ("attributes", "events", "purchases")
MAX_OBJECTS_PER_ARRAY = 75
MAX_BODY_BYTES = 4 * 1024 * 1024
# Room left for the JSON punctuation around the arrays.
_BODY_OVERHEAD = 64


@dataclass(frozen=True)
class Objects:
    """The Braze objects of one submission."""

    attributes: tuple[dict[str, Any], ...] = ()
    events: tuple[dict[str, Any], ...] = ()
    purchases: tuple[dict[str, Any], ...] = ()

    def count(self, array: str) -> int:
        return len(getattr(self, array))

    def as_dict(self) -> dict[str, list[dict[str, Any]]]:
        return {name: list(getattr(self, name)) for name in ARRAYS if getattr(self, name)}

    def size(self) -> int:
        return sum(
            len(json.dumps(obj, separators=(",", ":"))) + 1
            for name in ARRAYS
            for obj in getattr(self, name)
        )


@dataclass
class Batch:
    """One request body plus, per array, which submission owns each index."""

    body: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    owners: dict[str, list[Hashable]] = field(default_factory=dict)
    keys: list[Hashable] = field(default_factory=list)
    size: int = _BODY_OVERHEAD

    def owner(self, array: str, index: int) -> Hashable | None:
        owners = self.owners.get(array, [])
        return owners[index] if 0 <= index < len(owners) else None

    def objects_of(self, key: Hashable) -> dict[str, list[dict[str, Any]]]:
        return {
            array: [
                obj
                for obj, owner in zip(self.body[array], self.owners[array], strict=True)
                if owner == key
            ]
            for array in self.body
            if key in self.owners[array]
        }

    def body_without(self, keys: set[Hashable]) -> dict[str, list[dict[str, Any]]]:
        """The body as it would read without these owners' objects (nothing of them is kept)."""
        body = {
            array: [
                obj
                for obj, owner in zip(self.body[array], self.owners[array], strict=True)
                if owner not in keys
            ]
            for array in self.body
        }
        return {array: objects for array, objects in body.items() if objects}


def batch_build(
    items: Sequence[tuple[Hashable, Objects]],
    *,
    max_per_array: int = MAX_OBJECTS_PER_ARRAY,
    max_bytes: int = MAX_BODY_BYTES,
    max_updates: int | None = None,
) -> tuple[Batch, list[Hashable]]:
    """Pack items in order; return the batch and the keys that did not fit (to send later).

    ``max_updates`` caps all arrays together (Braze's MAU package allows 50 per request).
    A single item larger than the limits is still returned as left over, never split.
    """
    batch = Batch()
    left_over: list[Hashable] = []
    for key, objects in items:
        if left_over or not _fits(batch, objects, max_per_array, max_bytes, max_updates):
            left_over.append(key)
            continue
        for array in ARRAYS:
            for obj in getattr(objects, array):
                batch.body.setdefault(array, []).append(obj)
                batch.owners.setdefault(array, []).append(key)
        batch.keys.append(key)
        batch.size += objects.size()
    return batch, left_over


def _fits(
    batch: Batch, objects: Objects, max_per_array: int, max_bytes: int, max_updates: int | None
) -> bool:
    for array in ARRAYS:
        if len(batch.body.get(array, ())) + objects.count(array) > max_per_array:
            return False
    if max_updates is not None:
        total = sum(len(v) for v in batch.body.values()) + sum(objects.count(a) for a in ARRAYS)
        if total > max_updates:
            return False
    return batch.size + objects.size() <= max_bytes

"""Reading the Braze sandbox's request log over its inspection API (``/_sandbox/api/...``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from integrations.braze.attributes import IDENTIFIER_KEYS
from tests.bench.stack import http_json


@dataclass(frozen=True)
class TrackRequest:
    at: float  # when the sandbox handled it (epoch seconds, millisecond precision)
    status: int | None
    objects: int  # attributes + events + purchases
    attributes: list[dict[str, Any]]
    events: list[dict[str, Any]]


class Sandbox:
    def __init__(self, url: str) -> None:
        self.url = url

    def configure(self, **changes: Any) -> None:
        http_json(f"{self.url}/_sandbox/api/config", changes)

    def reset(self) -> None:
        http_json(f"{self.url}/_sandbox/api/reset", {})

    def stats(self) -> dict[str, Any]:
        return http_json(f"{self.url}/_sandbox/api/stats")

    def track_requests(self) -> list[TrackRequest]:
        return [_track(entry) for entry in http_json(f"{self.url}/_sandbox/api/requests")]


def _track(entry: dict[str, Any]) -> TrackRequest:
    body = entry.get("body") or {}
    return TrackRequest(
        at=datetime.fromisoformat(entry["time"]).timestamp(),
        status=entry.get("status"),
        objects=sum(entry.get("counts", {}).values()),
        attributes=list(body.get("attributes") or []),
        events=list(body.get("events") or []),
    )


def person_of(obj: dict[str, Any]) -> str:
    alias = obj.get("user_alias")
    if isinstance(alias, dict):
        return str(alias.get("alias_name", ""))
    return str(obj.get("external_id") or obj.get("email") or "")


def first_seen(requests: Iterable[TrackRequest]) -> dict[str, float]:
    """When each person's first object was accepted (201) by the sandbox."""
    seen: dict[str, float] = {}
    for request in requests:
        if request.status != 201:
            continue
        for obj in (*request.attributes, *request.events):
            seen.setdefault(person_of(obj), request.at)
    return seen


def data_points(requests: Iterable[TrackRequest]) -> int:
    """Attribute values written by accepted requests (what Braze bills), identifiers excluded
    (the bench hubs identify by user alias, so ``email`` is an ordinary attribute there)."""
    return sum(
        sum(1 for name in obj if name not in IDENTIFIER_KEYS)
        for request in requests
        if request.status == 201
        for obj in request.attributes
    )

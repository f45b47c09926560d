"""The demo hub that `make run` loads, and real-format Komo sample bodies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.utils import timezone

SAMPLES_DIR = Path(__file__).resolve().parent / "samples"
DEMO_API_KEY = "demo-braze-sandbox-key-0001"

DEMO_HUB_CONFIG: dict[str, Any] = {
    "slug": "autumn-footy",
    "name": "Autumn Footy Tipping",
    "active": True,
    "komo_site_id": "7f1c9a20-2b3d-4e5f-8a6b-9c0d1e2f3a4b",
    "identity": {"type": "alias_email", "field": "email", "alias_label": "email"},
    "create_missing_users": True,
    "default_phone_region": "AU",
    "events": ["CompetitionEntrySuccess"],
    "mappings": [
        {"field": "email", "attribute": "email", "type": "email", "on_error": "hold"},
        {"field": "first_name", "attribute": "first_name"},
        {"field": "last_name", "attribute": "last_name"},
        {"field": "mobile", "attribute": "phone", "type": "phone"},
        {"field": "birthday", "attribute": "dob", "type": "date"},
        {"field": "postcode", "attribute": "postcode"},
        {"field": "optin", "attribute": "email_subscribe", "type": "subscription"},
    ],
}


def sample(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES_DIR / f"{name}.json").read_text(encoding="utf-8"))


def demo_entry(*, komo_id: str) -> dict[str, Any]:
    payload = sample("competition-entry")
    payload["id"] = komo_id
    payload["timestamp"] = timezone.now().isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return payload

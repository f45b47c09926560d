"""The demo hub that `make run` loads, and real-format Komo sample bodies.

The demo hub delivers a competition entry (attributes + ``komo_competition_entry``, a running
score total and one nested object per card), a prize awarded (``komo_prize_awarded``, the prize
added to ``komo_prizes_won`` and a Braze transactional email through campaign
``demo-prize-email``) and a quiz start (``komo_quiz_started``), with the engagement attributes
switched on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.utils import timezone

SAMPLES_DIR = Path(__file__).resolve().parent / "samples"
DEMO_API_KEY = "demo-braze-sandbox-key-0001"
DEMO_PRIZE_CAMPAIGN = "demo-prize-email"

DEMO_HUB_CONFIG: dict[str, Any] = {
    "slug": "autumn-footy",
    "name": "Autumn Footy Tipping",
    "active": True,
    "komo_site_id": "7f1c9a20-2b3d-4e5f-8a6b-9c0d1e2f3a4b",
    "identity": {"type": "alias_email", "field": "email", "alias_label": "email"},
    "create_missing_users": True,
    "default_phone_region": "AU",
    "events": ["CompetitionEntrySuccess", "PrizeAwarded", "QuizStarted"],
    "mappings": [
        {"field": "email", "attribute": "email", "type": "email", "on_error": "hold"},
        {"field": "first_name", "attribute": "first_name"},
        {"field": "last_name", "attribute": "last_name"},
        {"field": "mobile", "attribute": "phone", "type": "phone"},
        {"field": "birthday", "attribute": "dob", "type": "date"},
        {"field": "postcode", "attribute": "postcode"},
        {"field": "optin", "attribute": "email_subscribe", "type": "subscription"},
    ],
    "event_rules": {
        "CompetitionEntrySuccess": {
            "attributes": [
                {"attribute": "komo_total_score", "mode": "inc", "field": "score"},
                {"attribute": "komo_cards", "mode": "object"},
            ]
        },
    },
    "engagement_attributes": {
        "hubs_engaged": "komo_hubs_engaged",
        "last_engaged_at": "komo_last_engaged_at",
        "entries": "komo_entries",
        "prizes_won": "komo_prizes_won",
    },
    "transactional": {"PrizeAwarded": {"campaign_id": DEMO_PRIZE_CAMPAIGN}},
}


def sample(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES_DIR / f"{name}.json").read_text(encoding="utf-8"))


def demo_payload(name: str, *, komo_id: str) -> dict[str, Any]:
    """A sample body with a fresh Komo id and the current time, as Komo would send it now."""
    payload = sample(name)
    payload["id"] = komo_id
    payload["timestamp"] = timezone.now().isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return payload


def demo_entry(*, komo_id: str) -> dict[str, Any]:
    return demo_payload("competition-entry", komo_id=komo_id)

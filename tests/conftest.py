"""Shared fixtures: a real Braze sandbox over HTTP, hub factories, sample Komo payloads."""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path

import pytest

SAMPLES = Path(__file__).resolve().parent.parent / "integrations" / "demo" / "samples"

DEMO_KEY = "sandbox-test-key-0001"
FORBIDDEN_KEY = "sandbox-key-without-users-track"


def komo_entry(**overrides) -> dict:
    """A real-format CompetitionEntrySuccess body with a fresh Komo id."""
    payload = json.loads((SAMPLES / "competition-entry.json").read_text())
    payload["id"] = str(uuid.uuid4())
    payload.update(overrides)
    return payload


@pytest.fixture(autouse=True)
def _english_after_each_test():
    """A test that switches language (e.g. to check the German pages) must not leak it."""
    yield
    from django.utils import translation

    translation.activate("en")


@pytest.fixture(autouse=True)
def _fresh_intake_windows():
    """Each test starts with no intake counts seen (SQLite reuses hub ids after a rollback)."""
    from integrations.services.intake_window import intake_windows_forget

    intake_windows_forget()


@pytest.fixture(scope="session")
def _sandbox_server():
    from integrations.braze_sandbox import BrazeSandbox

    server = BrazeSandbox(port=0, api_keys=(DEMO_KEY,), forbidden_keys=(FORBIDDEN_KEY,))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def sandbox(_sandbox_server):
    """The shared sandbox, reset (profiles, requests and faults) for each test."""
    _sandbox_server.reset(config=True)
    return _sandbox_server


DEFAULT_CONFIG = {
    "slug": "summer-comp",
    "name": "Summer competition",
    "active": True,
    "komo_site_id": "7f1c9a20-2b3d-4e5f-8a6b-9c0d1e2f3a4b",
    "identity": {"type": "alias_email", "field": "email", "alias_label": "email"},
    "create_missing_users": True,
    "default_phone_region": "AU",
    "events": ["CompetitionEntrySuccess"],
    "mappings": [
        {"field": "email", "attribute": "email", "type": "email"},
        {"field": "first_name", "attribute": "first_name"},
        {"field": "last_name", "attribute": "last_name"},
        {"field": "mobile", "attribute": "phone", "type": "phone"},
        {"field": "birthday", "attribute": "dob", "type": "date"},
        {"field": "optin", "attribute": "email_subscribe", "type": "subscription"},
        {"field": "postcode", "attribute": "postcode"},
    ],
}


@pytest.fixture
def make_hub(db):
    """Create a hub from (a variation of) the hub JSON; returns (hub, ingest token)."""
    from integrations.services.hubs import hub_config_import, hub_token_issue

    def make(endpoint: str = "https://rest.iad-01.braze.com", api_key: str = DEMO_KEY, **changes):
        config = copy.deepcopy(DEFAULT_CONFIG)
        config.update(changes)
        config.setdefault("braze", {"rest_endpoint": endpoint, "api_key": api_key})
        hub, _ = hub_config_import(config=config)
        token = hub_token_issue(hub=hub)
        hub.refresh_from_db()
        return hub, token

    return make


@pytest.fixture
def sandbox_hub(make_hub, sandbox):
    hub, token = make_hub(endpoint=sandbox.url)
    return hub, token

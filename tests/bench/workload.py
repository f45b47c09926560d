"""What the bench sends: a bench hub like the demo's and real-format Komo competition entries.

Backlogs (intake, drain) come from a pool of ``PEOPLE`` people in rotation: the Braze sandbox finds
a profile by scanning all of its profiles, so 20,000 distinct people would cost the sandbox about
half a second per request and the drain would measure the sandbox, not the portal. The
end-to-end runs use one new person per submission (they are matched by email).

Needs Django set up (the hub is created through the same service as ``hub_import``).
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.utils import timezone

from tests.bench.loadgen import Request, RequestFactory, http_post

SAMPLE = Path(__file__).resolve().parents[2] / "integrations/demo/samples/competition-entry.json"
API_KEY = "bench-sandbox-key-0001"
PEOPLE = 500

HUB_CONFIG: dict[str, Any] = {
    "name": "Bench hub",
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
        {"field": "score", "attribute": "last_score", "type": "number"},
    ],
}


def hub_create(*, slug: str, sandbox_url: str, **changes: Any) -> tuple[Any, str]:
    """A hub delivering to the sandbox; returns (hub, ingest token)."""
    from integrations.services.hubs import hub_config_import, hub_token_issue

    config = {**HUB_CONFIG, "slug": slug, **changes}
    config["braze"] = {"rest_endpoint": sandbox_url, "api_key": API_KEY}
    hub, _ = hub_config_import(config=config)
    token = hub_token_issue(hub=hub)
    hub.refresh_from_db()
    return hub, token


def sample_payload() -> dict[str, Any]:
    return json.loads(SAMPLE.read_text())


def _email(run: str, number: int, people: int | None) -> str:
    if people is None:
        return f"bench.{run}.{number}@example.com"
    return f"bench.person{number % people}@example.com"


def entry(
    number: int, *, run: str, email: str | None = None, people: int | None = None, **overrides: Any
) -> dict[str, Any]:
    """A competition entry with a fresh Komo id and (by default) its own person."""
    payload = sample_payload()
    payload.update(id=f"{run}-{number:09d}", email=email or _email(run, number, people))
    payload.update(overrides)
    return payload


def webhook_factory(
    *, slug: str, token: str, run: str, people: int | None = PEOPLE
) -> RequestFactory:
    """Competition entries for ``POST /api/v1/hubs/<slug>/submissions``; the tag is the email
    (one person per submission when ``people`` is None)."""
    headers = {"Authorization": f"Bearer {token}"}
    return _factory(f"/api/v1/hubs/{slug}/submissions", headers, run, people)


def ceiling_factory(path: str, *, run: str) -> RequestFactory:
    """The same bodies, for the bench ceilings (no token)."""
    return _factory(path, {}, run, PEOPLE)


def _factory(path: str, headers: dict[str, str], run: str, people: int | None) -> RequestFactory:
    # Split the body around the two values that change, so rendering one is a join, not a dump.
    body = json.dumps({**sample_payload(), "id": "\x00", "email": "\x00"}).encode()
    head, middle, tail = body.split(b"\\u0000")

    def make(number: int) -> Request:
        email = _email(run, number, people)
        payload = b"".join((head, f"{run}-{number:09d}".encode(), middle, email.encode(), tail))
        return http_post("127.0.0.1", path, payload, headers), email

    return make


def submissions_queue(hub: Any, count: int, *, run: str, batch: int = 2000) -> None:
    """Store ``count`` pending submissions directly (the state intake leaves behind), fast."""
    from integrations.models import Submission, SubmissionStatus
    from integrations.services.intake import person_hash_columns

    now = timezone.now()
    rows = []
    for number in range(count):
        payload = entry(number, run=run, people=PEOPLE)
        rows.append(
            Submission(
                hub=hub,
                komo_id=payload["id"],
                event=payload["event"],
                komo_timestamp=now - timedelta(seconds=1),
                payload=payload,
                received_at=now,
                status=SubmissionStatus.PENDING,
                next_attempt_at=now,
                **person_hash_columns(hub, payload),
            )
        )
    Submission.objects.bulk_create(rows, batch_size=batch)


def new_run_id() -> str:
    return uuid.uuid4().hex[:10]

"""Receiving Komo webhook bodies: authenticate the sender, store the body once, trigger delivery."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from integrations import tokens
from integrations.models import Hub, IdentityType, Submission, SubmissionStatus
from integrations.services.dispatch import hub_delivery_trigger

REQUIRED_KEYS = ("id", "event", "timestamp")


class IntakeError(Exception):
    """A body that cannot be accepted; ``message`` names the problem for the sender."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class ReceiveResult:
    submission: Submission
    created: bool


def hub_authenticate_by_slug(*, slug: str, token: str) -> Hub | None:
    """The hub if the token is its ingest token. Raises Hub.DoesNotExist for an unknown slug."""
    hub = Hub.objects.get(slug=slug)
    return hub if tokens.token_matches(token, hub.ingest_token_hash) else None


def hub_authenticate_by_token(*, token: str) -> Hub | None:
    if not token:
        return None
    hub = Hub.objects.filter(ingest_token_hash=tokens.token_hash(token)).first()
    if hub is None or not tokens.token_matches(token, hub.ingest_token_hash):
        return None
    return hub


def komo_timestamp_parse(value: Any) -> datetime:
    parsed = parse_datetime(value) if isinstance(value, str) else None
    if parsed is None:
        raise IntakeError(f"'timestamp' must be an ISO 8601 date-time, got {str(value)[:60]!r}.")
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, timezone.utc)
    return parsed


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def person_keys(hub: Hub, payload: dict[str, Any]) -> dict[str, str]:
    """Searchable person fields for support: email, phone and external id as captured."""
    identity_value = _text(payload.get(hub.identity_field))
    email = (
        identity_value
        if hub.identity_type in (IdentityType.ALIAS_EMAIL, IdentityType.EMAIL)
        else ""
    )
    phone = (
        identity_value
        if hub.identity_type in (IdentityType.ALIAS_PHONE, IdentityType.PHONE)
        else ""
    )
    external_id = identity_value if hub.identity_type == IdentityType.EXTERNAL_ID else ""
    return {
        "person_email": (email or _text(payload.get("email"))).lower()[:254],
        "person_phone": (phone or _text(payload.get("phone")) or _text(payload.get("mobile")))[:32],
        "person_external_id": external_id[:255],
    }


def payload_check(payload: Any) -> None:
    if not isinstance(payload, dict):
        raise IntakeError("The body must be a JSON object.")
    missing = [key for key in REQUIRED_KEYS if key not in payload or payload[key] in (None, "")]
    if missing:
        raise IntakeError("Missing required key(s): " + ", ".join(missing) + ".")
    for key in ("id", "event"):
        if not isinstance(payload[key], str | int) or isinstance(payload[key], bool):
            raise IntakeError(f"'{key}' must be a string.")
        if len(str(payload[key])) > 200:
            raise IntakeError(f"'{key}' is longer than 200 characters.")


def submission_receive(*, hub: Hub, payload: dict[str, Any]) -> ReceiveResult:
    """Store a Komo body once per (hub, Komo id); a repeat returns the stored submission.

    The row is written in one transaction; delivery is triggered only after it commits.
    """
    payload_check(payload)
    komo_id = str(payload["id"]).strip()
    event = str(payload["event"]).strip()
    komo_time = komo_timestamp_parse(payload["timestamp"])
    existing = Submission.objects.filter(hub=hub, komo_id=komo_id).first()
    if existing is not None:
        return ReceiveResult(existing, created=False)

    delivered_event = event in (hub.events or [])
    now = timezone.now()
    try:
        with transaction.atomic():
            submission = Submission.objects.create(
                hub=hub,
                komo_id=komo_id,
                event=event,
                komo_timestamp=komo_time,
                payload=payload,
                received_at=now,
                status=SubmissionStatus.PENDING if delivered_event else SubmissionStatus.IGNORED,
                next_attempt_at=now if delivered_event else None,
                **person_keys(hub, payload),
            )
    except IntegrityError:
        # A concurrent request with the same Komo id won the race: answer with its row.
        existing = Submission.objects.filter(hub=hub, komo_id=komo_id).first()
        if existing is None:
            raise
        return ReceiveResult(existing, created=False)
    if delivered_event and hub.active:
        transaction.on_commit(lambda: hub_delivery_trigger(hub_id=hub.pk))
    return ReceiveResult(submission, created=True)

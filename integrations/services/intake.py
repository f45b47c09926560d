"""Receiving Komo webhook bodies: authenticate the sender, store the body once, trigger delivery."""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError
from django.db.models import Q
from django.db.models.signals import post_delete, post_save
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from integrations import blind_index, signatures, tokens
from integrations.logging import context_hub_bind
from integrations.models import Hub, Submission, SubmissionStatus
from integrations.services.insert import JsonText, row_insert_new
from integrations.services.intake_window import intake_settle

log = logging.getLogger(__name__)

REQUIRED_KEYS = ("id", "event", "timestamp")
# Komo bodies are flat; anything deeper is not a Komo webhook (and would cost to store and show).
MAX_NESTING = 32


class IntakeError(Exception):
    """A body that cannot be accepted; ``message`` names the problem for the sender."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def _token_accepted(hub: Hub, token: str) -> bool:
    """The hub's ingest token, or the one it replaced while its grace period lasts."""
    if tokens.token_matches(token, hub.ingest_token_hash):
        return True
    expires = hub.previous_token_expires_at
    return (
        expires is not None
        and timezone.now() < expires
        and tokens.token_matches(token, hub.previous_token_hash)
    )


# Hubs looked up by the webhook, kept per process for WEBHOOK_HUB_CACHE_SECONDS: the lookup was a
# fifth of the webhook's CPU (docs/scaling.md). Saving or deleting a hub empties this process's
# cache at once; other processes see a change (a replaced token, a switched-off hub) within the
# cache time. Keyed by ("slug", slug) or ("token", digest); values are (fetched at, hub or None).
_hubs: dict[tuple[str, str], tuple[float, Hub | None]] = {}


def _hub_cached(key: tuple[str, str], load: Callable[[], Hub | None]) -> Hub | None:
    seconds = settings.WEBHOOK_HUB_CACHE_SECONDS
    now = time.monotonic()
    cached = _hubs.get(key)
    if cached is not None and now - cached[0] < seconds:
        return cached[1]
    hub = load()
    if seconds > 0:
        if len(_hubs) > 10_000:  # bounded: a flood of unknown slugs must not grow it forever
            _hubs.clear()
        _hubs[key] = (now, hub)
    return hub


def hubs_forget(**kwargs: Any) -> None:
    """Empty this process's hub cache (connected to Hub's post_save and post_delete)."""
    _hubs.clear()


post_save.connect(hubs_forget, sender=Hub, dispatch_uid="intake-hubs-forget-save")
post_delete.connect(hubs_forget, sender=Hub, dispatch_uid="intake-hubs-forget-delete")


def hub_authenticate_by_slug(*, slug: str, token: str) -> Hub | None:
    """The hub if the token is its ingest token. Raises Hub.DoesNotExist for an unknown slug."""
    hub = _hub_cached(("slug", slug), lambda: Hub.objects.filter(slug=slug).first())
    if hub is None:
        raise Hub.DoesNotExist(slug)
    if not _token_accepted(hub, token):
        return None
    context_hub_bind(hub.slug)  # log lines and metrics of this request name the hub
    return hub


def hub_authenticate_by_token(*, token: str) -> Hub | None:
    if not token:
        return None
    digest = tokens.token_hash(token)
    hub = _hub_cached(
        ("token", digest),
        lambda: Hub.objects.filter(
            Q(ingest_token_hash=digest) | Q(previous_token_hash=digest)
        ).first(),
    )
    if hub is None or not _token_accepted(hub, token):
        return None
    context_hub_bind(hub.slug)
    return hub


def hub_signature_check(*, hub: Hub, header: str | None, body: bytes) -> None:
    """Raise ``signatures.SignatureError`` when the hub requires signed webhooks and this body's
    ``X-Komo-Signature`` is missing, expired or wrong. Both secrets of a rotation are accepted."""
    if not hub.require_signature:
        return
    signatures.signature_verify(
        header=header,
        body=body,
        secrets_accepted=(hub.signing_secret, hub.signing_secret_previous),
    )


def komo_timestamp_parse(value: Any) -> datetime:
    try:
        parsed = parse_datetime(value) if isinstance(value, str) else None
    except ValueError:  # well-formed but impossible, e.g. minute 99
        parsed = None
    if parsed is None:
        raise IntakeError(
            _("'timestamp' must be an ISO 8601 date-time, got %(value)r.")
            % {"value": str(value)[:60]}
        )
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=UTC)  # (django.utils.timezone.utc is gone in Django 5)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise IntakeError(
            _("'timestamp' is outside the years 1 to 9999 in UTC: %(value)r.")
            % {"value": str(value)[:60]}
        ) from None


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def person_hash_columns(hub: Hub, payload: dict[str, Any]) -> dict[str, str]:
    """The blind-index columns of a submission (keyed hashes, never the values)."""
    person = blind_index.person_of(
        payload, identity_type=hub.identity_type, identity_field=hub.identity_field
    )
    return blind_index.person_hashes(person, region=hub.default_phone_region).as_columns()


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return _("The body contains a NUL character (\\u0000), which cannot be stored.")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return _(
                "The body contains an unpaired Unicode surrogate (e.g. \\ud800), which is not text."
            )
    return None


def _value_problem(value: Any) -> str | None:
    if isinstance(value, str):
        return _text_problem(value)
    if isinstance(value, float) and not math.isfinite(value):
        return _("The body contains a number too large to store (e.g. 1e400).")
    return None


def storable_problem(payload: Any, *, text: str | None = None) -> str | None:
    """Why a parsed JSON body cannot be stored as it is (every database we run on), or None.

    PostgreSQL's jsonb refuses NUL characters and unpaired surrogates, and no database stores an
    infinite number; refusing them here answers 400 instead of a database error (which would be
    a 503 and make the sender retry a body that can never be stored).

    ``text``, when given, is the JSON text ``payload`` was parsed from. Without a ``\\u`` escape
    in it, no string of the payload can hold a NUL or a surrogate (strict JSON has no raw control
    characters, and valid UTF-8 no surrogates), so a flat body only needs its numbers checked.
    """
    if text is not None and "\\u" not in text and isinstance(payload, dict):
        for value in payload.values():
            kind = type(value)
            if kind is dict or kind is list:
                break  # nested: the full walk below
            if kind is float and not math.isfinite(value):
                return _value_problem(value)
        else:
            return None
    stack: list[tuple[Any, int]] = [(payload, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth >= MAX_NESTING:
                return _("The body is nested deeper than %(levels)d levels.") % {
                    "levels": MAX_NESTING
                }
            if isinstance(value, dict):
                for key in value:
                    problem = _text_problem(key)
                    if problem:
                        return problem
                stack.extend((item, depth + 1) for item in value.values())
            else:
                stack.extend((item, depth + 1) for item in value)
            continue
        problem = _value_problem(value)
        if problem:
            return problem
    return None


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def payload_check(payload: Any, *, text: str | None = None) -> None:
    """Raise ``IntakeError`` naming the problem when ``payload`` is not a storable Komo body
    (``text``: the JSON text it was parsed from, see ``storable_problem``)."""
    if not isinstance(payload, dict):
        raise IntakeError(_("The body must be a JSON object."))
    problem = storable_problem(payload, text=text)
    if problem:
        raise IntakeError(problem)
    missing = [key for key in REQUIRED_KEYS if _blank(payload.get(key))]
    if missing:
        raise IntakeError(
            _("Missing required key(s): %(keys)s.") % {"keys": ", ".join(missing)}
        )
    for key in ("id", "event"):
        if not isinstance(payload[key], str | int) or isinstance(payload[key], bool):
            raise IntakeError(_("'%(key)s' must be a string.") % {"key": key})
        if len(str(payload[key])) > 200:
            raise IntakeError(_("'%(key)s' is longer than 200 characters.") % {"key": key})


class ReceiveResult:
    """What ``submission_receive`` did: ``created`` (False for a repeat), the submission's
    ``public_id`` and ``status`` (all the webhook answers with), and the ``submission`` itself,
    loaded only when asked for."""

    def __init__(
        self, *, created: bool, public_id: uuid.UUID, status: str,
        submission: Submission | None = None,
    ) -> None:  # fmt: skip
        self.created, self.public_id, self.status = created, public_id, status
        self._submission = submission

    @property
    def submission(self) -> Submission:
        if self._submission is None:
            self._submission = Submission.objects.get(public_id=self.public_id)
        return self._submission


def submission_receive(
    *, hub: Hub, payload: dict[str, Any], text: str | None = None,
    komo_time: datetime | None = None,
) -> ReceiveResult:
    """Store a Komo body once per (hub, Komo id); a repeat returns the stored submission.
    ``text``: the JSON text ``payload`` was parsed from, stored as it is (the webhook's body).
    ``komo_time``: given by a caller that has already run ``payload_check`` and parsed the
    timestamp (the webhook's serializer), so the body is not checked twice.

    The row is written by one INSERT, its own transaction; then the webhook is counted in the
    hub's intake window and delivery is triggered (``intake_settle``: one Redis round trip). A
    repeat is found by the unique (hub, Komo id) constraint in that same statement (``ON
    CONFLICT DO NOTHING``), not by a SELECT first: a SELECT plus BEGIN/COMMIT were three of the
    webhook's round trips, and Django's compiler a quarter of its CPU (docs/scaling.md).
    """
    if komo_time is None:  # else the caller checked the body (the webhook's serializer)
        payload_check(payload, text=text)
        komo_time = komo_timestamp_parse(payload["timestamp"])
    komo_id = str(payload["id"]).strip()
    event = str(payload["event"]).strip()
    delivered_event = event in (hub.events or [])
    now = timezone.now()
    public_id = uuid.uuid4()
    status = SubmissionStatus.PENDING if delivered_event else SubmissionStatus.IGNORED
    stored = row_insert_new(
        Submission,
        values={
            "hub_id": hub.pk,
            "public_id": public_id,
            "komo_id": komo_id,
            "event": event,
            "komo_timestamp": komo_time,
            "payload": payload if text is None else JsonText(text),
            "received_at": now,
            "status": status,
            "next_attempt_at": now if delivered_event else None,
            **person_hash_columns(hub, payload),
        },
        unique=("hub", "komo_id"),
    )
    if not stored:
        # A repeat (or a concurrent request with the same Komo id won): answer with its row.
        existing = Submission.objects.filter(hub=hub, komo_id=komo_id).first()
        if existing is None:  # it was deleted in between; nothing was stored, so say so
            raise IntegrityError("submission vanished after a conflicting insert")
        intake_settle(hub=hub)
        return ReceiveResult(
            created=False, public_id=existing.public_id, status=existing.status,
            submission=existing,
        )  # fmt: skip
    intake_settle(hub=hub, trigger=delivered_event and hub.active)
    return ReceiveResult(created=True, public_id=public_id, status=status)

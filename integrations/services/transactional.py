"""Braze transactional emails for Komo moments (prize awarded, coupon issued, entry confirmed, …).

* :func:`transactional_enqueue` is called by delivery for submissions Braze has just accepted
  (so the person exists). For each whose Komo event has a campaign in ``hub.transactional`` it
  writes one :class:`TransactionalSend` row with the exact request body, due now, and triggers
  ``deliver_transactional`` after the commit. The row's ``external_send_id`` is derived from the
  hub, Komo's ``id`` and the campaign and is unique: delivering a submission again (a retried
  batch, a redelivery) never creates a second email.
* :func:`transactional_deliver` sends due rows of one hub, each at most once at a time (a lease
  in ``claimed_until``), and records status, Braze's answer and ``dispatch_id``. The retry
  decision is :func:`integrations.retry.decide`'s. A retry carries the same
  ``external_send_id``, which Braze deduplicates for 24 hours, so a send that reached Braze
  before a timeout is not sent again; for the same reason nothing is retried once that window
  could have closed (``DEDUP_SAFE_SECONDS`` after the row was created).
* Unlike ``/users/track``, a 401/403/404 does not pause the hub's connection: a key may track
  users without the ``transactional.send`` permission, and a campaign id may be wrong. Such a row
  is retried with the usual backoff inside the safe window, then failed with the reason.
* :func:`transactional_sweep` (called by the sweep) triggers every hub with due rows, so a lost
  task never loses an email.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django_q.tasks import async_task

from integrations import metrics
from integrations.braze.client import TrackResult
from integrations.braze.instances import endpoint_allowed
from integrations.explain import outcome_explain
from integrations.mapping import transactional_request
from integrations.models import (
    BrazeConnection,
    ConnectionStatus,
    Hub,
    Submission,
    SubmissionStatus,
    TransactionalSend,
    TransactionalStatus,
)
from integrations.retry import Action, backoff_seconds, decide
from integrations.services import braze_api
from integrations.spec import HubSpec

log = logging.getLogger(__name__)

# Braze deduplicates external_send_id for 24 hours; an hour of margin for clocks and queues.
DEDUP_SAFE_SECONDS = 23 * 3600
RESPONSE_KEEP_CHARS = 16_000
RUN_SECONDS = 20.0
CLAIM_LIMIT = 50
FLAG_SECONDS = 60
# Outcomes a person must fix (key permission, campaign id); retried, never pausing delivery.
_NEEDS_A_PERSON = frozenset({"unauthorized", "forbidden", "not_found", "redirect"})


@dataclass
class TransactionalReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    waiting: bool = False


def external_send_id_for(*, hub_id: int, komo_id: str, campaign_id: str) -> str:
    """Deterministic per hub, Komo event and campaign; matches Braze's ``^[a-zA-Z0-9-_+/=]+$``."""
    digest = hashlib.sha256(f"{hub_id}\x1f{komo_id}\x1f{campaign_id}".encode()).hexdigest()
    return f"komo-{digest}"


# --- enqueue ---------------------------------------------------------------------------------


def transactional_enqueue(*, hub: Hub, submission_ids: list[int]) -> int:
    """Create the transactional sends due for these delivered submissions; returns how many.

    A submission whose send cannot be built (e.g. the identity type cannot be addressed by
    Braze's transactional API) gets a failed row with the reason, so support sees why.
    """
    if not hub.transactional or not submission_ids:
        return 0
    spec = hub.to_spec()
    wanted = {item.event for item in spec.transactional}
    submissions = Submission.objects.filter(
        pk__in=submission_ids, hub=hub, status=SubmissionStatus.DELIVERED, event__in=wanted
    ).only("pk", "komo_id", "payload", "payload_legacy")
    rows = [row for submission in submissions if (row := _send_row(hub, spec, submission))]
    existing = set(
        TransactionalSend.objects.filter(
            external_send_id__in=[row.external_send_id for row in rows]
        ).values_list("external_send_id", flat=True)
    )
    new = [row for row in rows if row.external_send_id not in existing]
    TransactionalSend.objects.bulk_create(new, ignore_conflicts=True)
    if any(row.status == TransactionalStatus.PENDING for row in new):
        transaction.on_commit(lambda: transactional_trigger(hub_id=hub.pk))
    return len(new)


def _send_row(hub: Hub, spec: HubSpec, submission: Submission) -> TransactionalSend | None:
    payload = submission.payload if isinstance(submission.payload, dict) else {}
    item = next((i for i in spec.transactional if i.event == payload.get("event")), None)
    if item is None:
        return None
    send_id = external_send_id_for(
        hub_id=hub.pk, komo_id=submission.komo_id, campaign_id=item.campaign_id
    )
    request = transactional_request(spec, payload, external_send_id=send_id)
    now = timezone.now()
    row = TransactionalSend(
        hub=hub,
        submission=submission,
        campaign_id=item.campaign_id,
        external_send_id=send_id,
        created_at=now,
        next_attempt_at=now,
    )
    if request is None or request.body is None:
        row.status = TransactionalStatus.FAILED
        row.status_reason = request.problem if request else ""
        row.next_attempt_at = None
    else:
        row.request_body = request.body
    return row


# --- triggers --------------------------------------------------------------------------------


def _flag(hub_id: int) -> str:
    return f"deliver-transactional-queued:{hub_id}"


def transactional_trigger(*, hub_id: int, force: bool = False) -> bool:
    """Enqueue ``deliver_transactional(hub_id)`` unless one is already queued."""
    try:
        if not cache.add(_flag(hub_id), 1, FLAG_SECONDS) and not force:
            return False
        async_task(
            "integrations.tasks.deliver_transactional",
            hub_id,
            task_name=f"deliver-transactional-{hub_id}"[:100],
        )
    except Exception:  # the sweep picks the rows up; a trigger must never fail delivery
        log.exception("could not enqueue transactional sends for hub %s", hub_id)
        return False
    return True


def _due(now: datetime) -> Q:
    return Q(status=TransactionalStatus.PENDING, next_attempt_at__lte=now) & (
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    )


def transactional_sweep() -> int:
    """Trigger every hub with due transactional sends; returns how many were triggered."""
    # One row per hub: EXISTS per hub, not DISTINCT over the due rows (whose default ordering
    # would make the DISTINCT per row; see services/sweep.py).
    due = TransactionalSend.objects.filter(_due(timezone.now()), hub_id=OuterRef("pk"))
    hub_ids = (
        Hub.objects.filter(active=True, connection__isnull=False)
        .exclude(connection__status=ConnectionStatus.PAUSED)
        .filter(Exists(due))
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    return sum(transactional_trigger(hub_id=hub_id) for hub_id in hub_ids)


# --- delivery --------------------------------------------------------------------------------


def transactional_deliver(*, hub_id: int, run_seconds: float = RUN_SECONDS) -> TransactionalReport:
    """Send the hub's due transactional emails until none is due or ``run_seconds`` pass."""
    cache.delete(_flag(hub_id))
    report = TransactionalReport()
    braze = BrazeConnection.objects.filter(hub_id=hub_id, hub__active=True).first()
    if braze is None or braze.is_paused:
        # Switched off, or the key or endpoint needs a person: the rows wait, unattempted.
        report.waiting = True
        return report
    if not endpoint_allowed(braze.rest_endpoint, settings.BRAZE_EXTRA_ENDPOINTS):
        report.waiting = True  # never send the key anywhere else; delivery pauses the connection
        return report
    deadline = time.monotonic() + run_seconds
    while time.monotonic() < deadline:
        rows, lease = _claim(hub_id)
        if not rows:
            return report
        for row in rows:
            _send(braze, row, lease, report)
    if TransactionalSend.objects.filter(_due(timezone.now()), hub_id=hub_id).exists():
        transactional_trigger(hub_id=hub_id, force=True)
    return report


def _claim(hub_id: int) -> tuple[list[TransactionalSend], datetime]:
    """Lease up to CLAIM_LIMIT due rows; the lease's end doubles as the claim token."""
    now = timezone.now()
    lease = now + timedelta(seconds=settings.DELIVERY_CLAIM_SECONDS)
    with transaction.atomic():
        queryset = TransactionalSend.objects.filter(_due(now), hub_id=hub_id).order_by(
            "next_attempt_at", "id"
        )
        if connection.features.has_select_for_update_skip_locked:
            queryset = queryset.select_for_update(skip_locked=True)
        rows = list(queryset[:CLAIM_LIMIT])
        TransactionalSend.objects.filter(pk__in=[row.pk for row in rows]).update(
            claimed_until=lease
        )
    return rows, lease


def _send(
    braze: BrazeConnection, row: TransactionalSend, lease: datetime, report: TransactionalReport
) -> None:
    result = braze_api.braze_client().send_transactional(
        endpoint=braze.rest_endpoint,
        api_key=braze.api_key,
        campaign_id=row.campaign_id,
        body=row.request_body,
    )
    metrics.braze_request_observed(braze.hub.slug, result, kind="transactional")
    _record(row, lease, result, report)


def _record(
    row: TransactionalSend, lease: datetime, result: TrackResult, report: TransactionalReport
) -> None:
    now = timezone.now()
    attempts = row.attempts + 1
    changes: dict = {
        "attempts": attempts,
        "status_code": result.status_code,
        "response_body": result.response_text[:RESPONSE_KEEP_CHARS],
        "claimed_until": None,
    }
    outcome = str(result.outcome)
    if result.ok:
        changes.update(
            status=TransactionalStatus.SENT,
            status_reason="",
            dispatch_id=_dispatch_id(result)[:200],
            sent_at=now,
            next_attempt_at=None,
        )
        report.sent += 1
    else:
        delay = _retry_delay(outcome, attempts, result)
        reason = _explain(result)
        if delay is not None and (now - row.created_at).total_seconds() + delay > (
            DEDUP_SAFE_SECONDS
        ):
            delay = None
            reason = _(
                "%(reason)s Not retried: Braze's 24-hour protection against sending "
                "twice would no longer cover a retry."
            ) % {"reason": reason}
        if delay is None:
            changes.update(
                status=TransactionalStatus.FAILED, status_reason=reason, next_attempt_at=None
            )
            report.failed += 1
        else:
            changes.update(status_reason=reason, next_attempt_at=now + timedelta(seconds=delay))
            if outcome == "rate_limited":
                changes["attempts"] = row.attempts  # waiting for a limit does not use a retry
            report.retried += 1
    TransactionalSend.objects.filter(pk=row.pk, claimed_until=lease).update(**changes)


def _retry_delay(outcome: str, attempts: int, result: TrackResult) -> float | None:
    """Seconds until the next try, or None when the row fails now (decide() is the policy)."""
    if outcome in _NEEDS_A_PERSON:
        return backoff_seconds(attempts)
    reset_in = None
    if result.rate_limit is not None and result.rate_limit.reset is not None:
        reset_in = result.rate_limit.reset - time.time()
    decision = decide(outcome, attempts=attempts, rate_limit_reset_in=reset_in)
    if decision.action in (Action.RETRY, Action.WAIT):
        return decision.delay_seconds
    return None


def _dispatch_id(result: TrackResult) -> str:
    try:
        answer = json.loads(result.response_text)
    except ValueError:
        return ""
    dispatch_id = answer.get("dispatch_id") if isinstance(answer, dict) else None
    return dispatch_id if isinstance(dispatch_id, str) else ""


def _explain(result: TrackResult) -> str:
    """Braze's answer for a transactional send, in plain words."""
    outcome = str(result.outcome)
    specific = {
        "unauthorized": _(
            "Braze refused the API key (401) for the transactional email; it is tried again "
            "later and fails if the key is not fixed."
        ),
        "forbidden": _(
            "The API key lacks the transactional.send permission (403); the email is tried "
            "again later and fails if the permission is not added."
        ),
        "not_found": _(
            "Braze answered 404: check the transactional campaign ID; the email is tried again "
            "later and fails if it is not fixed."
        ),
        "timeout": _(
            "Braze did not answer in time; the email is tried again with the same "
            "external_send_id, so Braze does not send it twice."
        ),
    }.get(outcome)
    if specific is None:
        return outcome_explain(outcome, status_code=result.status_code, message=result.message)
    details = [f"HTTP {result.status_code}"] if result.status_code else []
    if result.message:
        details.append(_("Braze said: “%(message)s”") % {"message": result.message[:300]})
    return f"{specific} ({'; '.join(details)})" if details else specific

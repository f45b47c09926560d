"""Delivering pending submissions to Braze: claim, map, batch, send, record, decide.

The submission row is the queue of record; tasks only trigger this code. Claims are leases
(``claimed_until``) taken with ``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL (SQLite serialises
writers with BEGIN IMMEDIATE), so two workers never send the same submission at once and a worker
that dies mid-batch only delays its batch until the lease runs out. Delivery is at-least-once.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from integrations.batching import Batch, Objects, batch_build
from integrations.braze.client import BrazeClient, TrackResult
from integrations.braze.instances import endpoint_allowed
from integrations.mapping import MappingResult, map_submission
from integrations.models import (
    AttemptItem,
    BrazeConnection,
    ConnectionStatus,
    DeliveryAttempt,
    Hub,
    ItemResult,
    Submission,
    SubmissionStatus,
)
from integrations.retry import Action, decide
from integrations.services import rate_budget
from integrations.services.dispatch import hub_delivery_flag_clear, hub_delivery_trigger
from integrations.spec import HubSpec

log = logging.getLogger(__name__)

RESPONSE_KEEP_CHARS = 16_000
RUN_SECONDS = 20.0


@lru_cache(maxsize=1)
def braze_client() -> BrazeClient:
    return BrazeClient(
        connect_timeout=settings.BRAZE_CONNECT_TIMEOUT_SECONDS,
        read_timeout=settings.BRAZE_TIMEOUT_SECONDS,
    )


@dataclass
class RunReport:
    requests: int = 0
    delivered: int = 0
    retried: int = 0
    failed: int = 0
    held: int = 0
    paused: bool = False
    more_due: bool = False
    outcomes: list[str] = field(default_factory=list)


def objects_of(result: MappingResult) -> Objects:
    return Objects(
        attributes=(result.attributes,) if result.attributes else (),
        events=tuple(result.events),
    )


def problems_as_json(result: MappingResult) -> list[dict]:
    return [
        {
            "field": p.field,
            "attribute": p.attribute,
            "code": p.code,
            "message": str(p.message),
            "held": p.held,
        }
        for p in result.problems
    ]


# --- claiming --------------------------------------------------------------------------------


def _due(hub_id: int, now) -> Q:
    return Q(hub_id=hub_id, status=SubmissionStatus.PENDING, next_attempt_at__lte=now) & (
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    )


def submissions_claim(*, hub_id: int, limit: int) -> tuple[list[Submission], uuid.UUID]:
    """Lease up to ``limit`` due submissions of a hub to this caller."""
    token = uuid.uuid4()
    now = timezone.now()
    with transaction.atomic():
        queryset = Submission.objects.filter(_due(hub_id, now)).order_by("next_attempt_at", "id")
        if connection.features.has_select_for_update_skip_locked:
            queryset = queryset.select_for_update(skip_locked=True, of=("self",))
        claimed = list(queryset[:limit])
        if claimed:
            Submission.objects.filter(pk__in=[s.pk for s in claimed]).update(
                claimed_until=now + timedelta(seconds=settings.DELIVERY_CLAIM_SECONDS),
                claim_token=token,
            )
    return claimed, token


def submissions_release(*, pks: Iterable[int], token: uuid.UUID, next_attempt_at=None) -> None:
    changes: dict = {"claimed_until": None, "claim_token": None}
    if next_attempt_at is not None:
        changes["next_attempt_at"] = next_attempt_at
    Submission.objects.filter(pk__in=list(pks), claim_token=token).update(**changes)


def hub_has_due(*, hub_id: int) -> bool:
    return Submission.objects.filter(_due(hub_id, timezone.now())).exists()


# --- one run ---------------------------------------------------------------------------------


def delivery_run(*, hub_id: int, run_seconds: float = RUN_SECONDS) -> RunReport:
    """Deliver due submissions of one hub until none is due, the connection pauses, the rate
    budget says wait, or ``run_seconds`` pass (then another task is enqueued)."""
    hub_delivery_flag_clear(hub_id=hub_id)
    report = RunReport()
    hub = Hub.objects.select_related("connection").filter(pk=hub_id).first()
    if hub is None or not hub.active:
        return report
    braze = getattr(hub, "connection", None)
    if braze is None or braze.is_paused:
        report.paused = True
        return report
    if not endpoint_allowed(braze.rest_endpoint, settings.BRAZE_EXTRA_ENDPOINTS):
        # Defence in depth against SSRF: the endpoint was validated when saved, but settings or
        # the database may have changed since. Never send the key anywhere else.
        connection_pause(braze, reason=_endpoint_refused_reason(braze.rest_endpoint))
        report.paused = True
        return report
    spec = hub.to_spec()
    deadline = time.monotonic() + run_seconds
    while time.monotonic() < deadline:
        wait = rate_budget.budget_wait_seconds(fingerprint=braze.api_key_fingerprint)
        if wait > 0:
            _postpone_due(hub_id, wait)
            return report
        claimed, token = submissions_claim(hub_id=hub_id, limit=settings.DELIVERY_BATCH_SIZE)
        if not claimed:
            return report
        _deliver_claimed(hub, braze, spec, claimed, token, report)
        if report.paused:
            return report
    report.more_due = hub_has_due(hub_id=hub_id)
    if report.more_due:
        hub_delivery_trigger(hub_id=hub_id, force=True)
    return report


def _postpone_due(hub_id: int, wait: float) -> None:
    """The key's rate budget is spent: due submissions wait for the reset, no attempt used."""
    Submission.objects.filter(_due(hub_id, timezone.now())).update(
        next_attempt_at=timezone.now() + timedelta(seconds=wait)
    )


def _deliver_claimed(
    hub: Hub,
    braze: BrazeConnection,
    spec: HubSpec,
    claimed: list[Submission],
    token: uuid.UUID,
    report: RunReport,
) -> None:
    by_pk = {s.pk: s for s in claimed}
    deliverable: list[tuple[int, Objects]] = []
    for submission in claimed:
        result = map_submission(spec, submission.payload)
        submission.problems = problems_as_json(result)
        if not result.deliverable:
            _hold(submission, token, result.hold_reason)
            report.held += 1
            continue
        deliverable.append((submission.pk, objects_of(result)))
    if not deliverable:
        return
    batch, left_over = batch_build(deliverable)
    if left_over:
        submissions_release(pks=left_over, token=token)
    if not batch.keys:
        return
    result = braze_client().track(
        endpoint=braze.rest_endpoint, api_key=braze.api_key, body=batch.body
    )
    report.requests += 1
    report.outcomes.append(str(result.outcome))
    _record_rate_limit(braze, result)
    _record(hub, braze, batch, result, by_pk, token, report)


def _record_rate_limit(braze: BrazeConnection, result: TrackResult) -> None:
    if result.rate_limit is not None:
        rate_budget.budget_record(
            fingerprint=braze.api_key_fingerprint,
            remaining=result.rate_limit.remaining,
            reset=result.rate_limit.reset,
        )
    if str(result.outcome) == "rate_limited":
        reset = result.rate_limit.reset if result.rate_limit and result.rate_limit.reset else None
        rate_budget.budget_exhaust(
            fingerprint=braze.api_key_fingerprint,
            reset=reset or time.time() + 5,
        )


def _hold(submission: Submission, token: uuid.UUID, reason: str) -> None:
    Submission.objects.filter(pk=submission.pk, claim_token=token).update(
        status=SubmissionStatus.HELD,
        status_reason=reason,
        problems=submission.problems,
        claimed_until=None,
        claim_token=None,
        next_attempt_at=None,
    )


def _item_errors(batch: Batch, result: TrackResult) -> dict[int, str]:
    errors: dict[int, str] = {}
    for item in result.item_errors:
        owner = batch.owner(item.input_array, item.index) if item.index is not None else None
        if owner is not None:
            message = f"{item.input_array}[{item.index}]: {item.type}"
            errors[owner] = f"{errors[owner]}; {message}" if owner in errors else message
    return errors


def _reset_in(result: TrackResult) -> float | None:
    if result.rate_limit is None or result.rate_limit.reset is None:
        return None
    return result.rate_limit.reset - time.time()


@transaction.atomic
def _record(
    hub: Hub,
    braze: BrazeConnection,
    batch: Batch,
    result: TrackResult,
    by_pk: dict[int, Submission],
    token: uuid.UUID,
    report: RunReport,
) -> None:
    now = timezone.now()
    attempt = DeliveryAttempt.objects.create(
        hub=hub,
        started_at=now - timedelta(milliseconds=result.duration_ms),
        duration_ms=result.duration_ms,
        endpoint=braze.rest_endpoint,
        request_body=batch.body,
        request_bytes=result.request_bytes,
        status_code=result.status_code,
        outcome=str(result.outcome),
        message=result.message[:2000],
        response_body=result.response_text[:RESPONSE_KEEP_CHARS],
    )
    item_errors = _item_errors(batch, result)
    items: list[AttemptItem] = []
    delivered: list[int] = []
    outcome = str(result.outcome)
    for pk in batch.keys:
        submission = by_pk[pk]
        attempts = submission.attempts + 1
        decision = decide(
            outcome,
            attempts=attempts,
            item_error=item_errors.get(pk),
            rate_limit_reset_in=_reset_in(result),
        )
        error = item_errors.get(pk) or (
            "" if decision.action == Action.DELIVERED else _plain_reason(result)
        )
        items.append(
            AttemptItem(
                attempt=attempt, submission_id=pk, result=_ITEM_RESULT[decision.action], error=error
            )
        )
        if decision.action == Action.DELIVERED:
            delivered.append(pk)
            continue
        _apply(submission, token, decision, attempts, error, now, report)
    AttemptItem.objects.bulk_create(items)
    if delivered:
        _mark_delivered(delivered, by_pk, token, now)
        after_delivered(hub=hub, submission_ids=delivered)
        report.delivered += len(delivered)
        if (
            braze.status != ConnectionStatus.OK
            or not braze.last_success_at
            or (now - braze.last_success_at) > timedelta(seconds=30)
        ):
            BrazeConnection.objects.filter(pk=braze.pk).update(
                status=ConnectionStatus.OK,
                last_success_at=now,
                status_changed_at=now
                if braze.status != ConnectionStatus.OK
                else braze.status_changed_at,
            )
            braze.status, braze.last_success_at = ConnectionStatus.OK, now
    if report.paused:
        connection_pause(braze, reason=_plain_reason(result))


def connection_pause(braze: BrazeConnection, *, reason: str) -> None:
    """Stop delivering with this connection until a person fixes it; submissions wait."""
    BrazeConnection.objects.filter(pk=braze.pk).update(
        status=ConnectionStatus.PAUSED,
        status_reason=reason,
        status_changed_at=timezone.now(),
    )
    braze.status, braze.status_reason = ConnectionStatus.PAUSED, reason


def _endpoint_refused_reason(endpoint: str) -> str:
    from django.utils.translation import gettext as _

    return _("The REST endpoint %(url)s is not an allowed Braze host; nothing was sent.") % {
        "url": endpoint[:200]
    }


def after_delivered(*, hub: Hub, submission_ids: list[int]) -> None:
    """Follow-up work for submissions Braze has just accepted (transactional emails)."""
    from integrations.services.transactional import transactional_enqueue

    transactional_enqueue(hub=hub, submission_ids=submission_ids)


def _mark_delivered(pks: list[int], by_pk: dict[int, Submission], token: uuid.UUID, now) -> None:
    """One UPDATE for the clean ones; those with skipped-field problems keep their own list."""
    changes = {
        "status": SubmissionStatus.DELIVERED,
        "delivered_at": now,
        "attempts": F("attempts") + 1,
        "status_reason": "",
        "next_attempt_at": None,
        "claimed_until": None,
        "claim_token": None,
    }
    clean = [pk for pk in pks if not by_pk[pk].problems]
    Submission.objects.filter(pk__in=clean, claim_token=token).update(problems=[], **changes)
    for pk in set(pks) - set(clean):
        Submission.objects.filter(pk=pk, claim_token=token).update(
            problems=by_pk[pk].problems, **changes
        )


_ITEM_RESULT = {
    Action.DELIVERED: ItemResult.DELIVERED,
    Action.RETRY: ItemResult.RETRY,
    Action.WAIT: ItemResult.RETRY,
    Action.PAUSE: ItemResult.WAITING,
    Action.FAIL: ItemResult.FAILED,
}


def _apply(
    submission: Submission,
    token: uuid.UUID,
    decision,
    attempts: int,
    error: str,
    now,
    report: RunReport,
) -> None:
    common = {"claimed_until": None, "claim_token": None, "problems": submission.problems}
    queryset = Submission.objects.filter(pk=submission.pk, claim_token=token)
    if decision.action == Action.FAIL:
        queryset.update(
            status=SubmissionStatus.FAILED,
            status_reason=error,
            attempts=attempts,
            next_attempt_at=None,
            **common,
        )
        report.failed += 1
    elif decision.action == Action.RETRY:
        queryset.update(
            status_reason=error,
            attempts=attempts,
            next_attempt_at=now + timedelta(seconds=decision.delay_seconds),
            **common,
        )
        report.retried += 1
    elif decision.action == Action.WAIT:
        queryset.update(
            status_reason=error,
            next_attempt_at=now + timedelta(seconds=decision.delay_seconds),
            **common,
        )
        report.retried += 1
    elif decision.action == Action.PAUSE:
        queryset.update(status_reason=error, next_attempt_at=now, **common)
        report.paused = True


def _plain_reason(result: TrackResult) -> str:
    """Braze's answer in words a support person understands."""
    from integrations.explain import outcome_explain

    return outcome_explain(result.outcome, status_code=result.status_code, message=result.message)

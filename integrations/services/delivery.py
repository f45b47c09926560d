"""Delivering pending submissions to Braze: claim, map, batch, send, record, decide.

The submission row is the queue of record; tasks only trigger this code. Claims are leases
(``claimed_until``) taken with ``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL (SQLite serialises
writers with BEGIN IMMEDIATE), so two workers never send the same submission at once and a worker
that dies mid-batch only delays its batch until the lease runs out. Delivery is at-least-once.

Throughput under a backlog: every claim takes a full batch (75), and a run that claimed a full
batch asks for a helper (a coalesced trigger), so every free worker drains the same hub at once.
Each request first takes a slot of the API key's shared rate budget (``rate_budget``); a short
wait for the next Braze window is slept through while holding the claimed batch, a long one
(a 429 with a distant reset) hands the batch back for later.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from integrations import metrics
from integrations.batching import Batch, Objects, batch_build
from integrations.braze.client import TrackResult
from integrations.braze.instances import endpoint_allowed
from integrations.mapping import MappingResult, map_submission
from integrations.models import (
    AttemptItem,
    Backfill,
    BackfillStatus,
    BrazeConnection,
    ConnectionStatus,
    DeliveryAttempt,
    Hub,
    ItemResult,
    Submission,
    SubmissionStatus,
)
from integrations.reasons import Reason, message_parts, reason, reason_english
from integrations.retry import Action, decide
from integrations.services import braze_api, rate_budget, unchanged
from integrations.services.dispatch import (
    hub_delivery_flag_clear,
    hub_delivery_helper,
    hub_delivery_trigger,
)
from integrations.services.engagement import mapping_contexts
from integrations.services.transactional import transactional_enqueue
from integrations.spec import HubSpec

log = logging.getLogger(__name__)

RESPONSE_KEEP_CHARS = 16_000
RUN_SECONDS = 20.0
# Waits for the key's next rate window up to this long are slept through (Braze's windows are
# 3 s); longer ones postpone the due submissions and free the worker.
MAX_BUDGET_SLEEP_SECONDS = 3.5
# Added to the linger for the flag round trip of the web process (a few ms on one network).
LINGER_MARGIN_SECONDS = 0.05


@dataclass
class RunReport:
    requests: int = 0
    delivered: int = 0
    retried: int = 0
    failed: int = 0
    held: int = 0
    paused: bool = False
    more_due: bool = False
    unchanged_skipped: int = 0  # attribute values not sent because Braze already had them
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
            "message_parts": message_parts(p.message),
            "held": p.held,
        }
        for p in result.problems
    ]


# --- claiming --------------------------------------------------------------------------------


def _due(hub_id: int, now) -> Q:
    return Q(hub_id=hub_id, status=SubmissionStatus.PENDING, next_attempt_at__lte=now) & (
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    )


def submissions_claimable(
    *, hub_id: int, limit: int, now, backfilled: bool = False
) -> QuerySet[Submission]:
    """The claim's SELECT: the hub's oldest due live rows (``backfilled``: rows of a backfill,
    oldest row time first), locked, skipping rows others locked. Each has its partial index."""
    due = _due(hub_id, now) & Q(backfill__isnull=not backfilled)
    queryset = Submission.objects.filter(due).order_by("next_attempt_at", "id")
    if connection.features.has_select_for_update_skip_locked:
        queryset = queryset.select_for_update(skip_locked=True, of=("self",))
    return queryset[:limit]


def submissions_claim(*, hub_id: int, limit: int) -> tuple[list[Submission], uuid.UUID]:
    """Lease up to ``limit`` due submissions of a hub to this caller: live ones first, then
    backfilled ones (oldest row time first) to fill the request, so a backlog of backfilled
    rows never stands in front of a webhook (each claim has its own partial index)."""
    token = uuid.uuid4()
    now = timezone.now()
    with transaction.atomic():
        claimed = list(submissions_claimable(hub_id=hub_id, limit=limit, now=now))
        if len(claimed) < limit:
            claimed += submissions_claimable(
                hub_id=hub_id, limit=limit - len(claimed), now=now, backfilled=True
            )
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
    budget says wait long, or ``run_seconds`` pass (then another task is enqueued).

    The run ends only after a check for due work that starts at least ``_linger_seconds()``
    after it cleared the hub's flag: a webhook that did not set the flag (its web process set it
    less than ``WEBHOOK_COALESCE_SECONDS`` before) was committed before that check
    (services/intake_window.py)."""
    hub_delivery_flag_clear(hub_id=hub_id)
    cleared_at = time.monotonic()
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
        connection_pause(braze, why=endpoint_refused_reason(braze.rest_endpoint))
        report.paused = True
        return report
    spec = hub.to_spec()
    deadline = time.monotonic() + run_seconds
    # Pace from the first request when a backfill may be draining (any run, even one a webhook
    # started, would otherwise spend slots ahead of the schedule live traffic relies on).
    paced = Backfill.objects.filter(hub_id=hub_id, status=BackfillStatus.RUNNING).exists()
    while time.monotonic() < deadline:
        wait = rate_budget.budget_peek_wait(fingerprint=braze.api_key_fingerprint)
        if wait > MAX_BUDGET_SLEEP_SECONDS:
            _postpone_due(hub_id, wait)
            return report
        if paced:  # a backfill is draining: keep the window's slots spread for live traffic
            _paced_turn(braze.api_key_fingerprint)
        limit = settings.DELIVERY_BATCH_SIZE
        checked_at = time.monotonic()
        claimed, token = submissions_claim(hub_id=hub_id, limit=limit)
        paced = any(s.backfill_id is not None for s in claimed)
        if not claimed:
            linger = cleared_at + _linger_seconds() - checked_at
            if linger <= 0:
                return report
            time.sleep(linger)
            continue
        if len(claimed) == limit:
            # A full batch: more is probably waiting, so let a free worker help (coalesced).
            hub_delivery_helper(hub_id=hub_id)
        delivered = _deliver_claimed(hub, braze, spec, claimed, token, report, paced=paced)
        if not delivered or report.paused:
            return report
    report.more_due = hub_has_due(hub_id=hub_id)
    if report.more_due:
        hub_delivery_trigger(hub_id=hub_id, force=True)
    return report


def _linger_seconds() -> float:
    """How long after clearing the flag a run's last check must start: the webhooks' coalescing
    interval, plus a margin for the time the web process's flag round trip took."""
    if settings.DELIVERY_LINGER_SECONDS is not None:  # set for web machines' longer interval
        return settings.DELIVERY_LINGER_SECONDS
    interval = settings.WEBHOOK_COALESCE_SECONDS
    return interval + LINGER_MARGIN_SECONDS if interval > 0 else 0.0


def _postpone_due(hub_id: int, wait: float) -> None:
    """The key's rate budget is spent: due submissions wait for the reset, no attempt used
    (backfilled ones stay as they are: their claim comes after live ones anyway)."""
    metrics.budget_waited("postpone", wait)
    live = _due(hub_id, timezone.now()) & Q(backfill__isnull=True)
    Submission.objects.filter(live).update(
        next_attempt_at=timezone.now() + timedelta(seconds=wait)
    )


def _paced_turn(fingerprint: str) -> None:
    """Sleep until this run's turn in the key's paced schedule (rate_budget.budget_pace_turn)."""
    slept = 0.0
    while slept <= MAX_BUDGET_SLEEP_SECONDS:
        turn = rate_budget.budget_pace_turn(fingerprint=fingerprint)
        time.sleep(turn.wait)
        slept += turn.wait
        if turn.granted:
            return


def _budget_slot(fingerprint: str, *, paced: bool = False) -> rate_budget.Grant:
    """A slot of the key's shared budget, sleeping through short waits for the next window
    (``paced``: no sleep; the caller takes a new turn of the paced schedule instead)."""
    slept = 0.0
    while True:
        grant = rate_budget.budget_acquire(fingerprint=fingerprint)
        if grant.slot is not None or paced or slept + grant.wait > MAX_BUDGET_SLEEP_SECONDS:
            return grant
        metrics.budget_waited("sleep", grant.wait)
        time.sleep(grant.wait)
        slept += grant.wait


@dataclass
class _Prepared:
    """The claimed submissions turned into one request body (or nothing to send)."""

    batch: Batch
    person_of: dict[int, str] = field(default_factory=dict)  # pk → person key (skip_unchanged)
    known: dict[str, dict[str, str]] = field(default_factory=dict)
    unchanged_only: list[int] = field(default_factory=list)  # nothing left to send


def _deliver_claimed(
    hub: Hub,
    braze: BrazeConnection,
    spec: HubSpec,
    claimed: list[Submission],
    token: uuid.UUID,
    report: RunReport,
    *,
    paced: bool = False,
) -> bool:
    """Send one request for the claimed submissions. False when the run should stop (the rate
    budget asks for a long wait; the batch was handed back)."""
    by_pk = {s.pk: s for s in claimed}
    prepared = _prepare(hub, spec, claimed, token, report)
    if prepared is None:
        return True
    if prepared.unchanged_only:
        _mark_delivered(
            prepared.unchanged_only,
            by_pk,
            token,
            timezone.now(),
            reason=_unchanged_reason(),
            attempted=False,
        )
        report.delivered += len(prepared.unchanged_only)
        after_delivered(hub=hub, submission_ids=prepared.unchanged_only)
    batch = prepared.batch
    if not batch.keys:
        return True
    grant = _budget_slot(braze.api_key_fingerprint, paced=paced)
    if grant.slot is None and paced and grant.wait <= MAX_BUDGET_SLEEP_SECONDS:
        # The window's slots went faster than its turns (Braze counted a request of ours in it):
        # hand the batch back and take the next window's turn, rather than wake with every
        # other refused sender at its start and spend its first slots at once.
        submissions_release(pks=batch.keys, token=token)
        return True
    if grant.slot is None:
        later = timezone.now() + timedelta(seconds=grant.wait)
        submissions_release(pks=batch.keys, token=token, next_attempt_at=later)
        _postpone_due(hub.pk, grant.wait)
        return False
    result = braze_api.braze_client().track(
        endpoint=braze.rest_endpoint, api_key=braze.api_key, body=batch.body
    )
    _observe_rate_limit(grant.slot, result)
    report.requests += 1
    report.outcomes.append(str(result.outcome))
    _record(hub, braze, batch, result, by_pk, token, report, prepared)
    return True


def _prepare(
    hub: Hub, spec: HubSpec, claimed: list[Submission], token: uuid.UUID, report: RunReport
) -> _Prepared | None:
    """Map every claimed submission (holding the ones that cannot go), drop unchanged values
    for hubs that ask for it, and pack what is left into one body."""
    mapped: list[tuple[Submission, MappingResult]] = []
    contexts = mapping_contexts(hub=hub, submissions=claimed)
    for submission in claimed:
        result = map_submission(spec, submission.payload, context=contexts.get(submission.pk))
        submission.problems = problems_as_json(result)
        if not result.deliverable:
            _hold(submission, token, hold_reason(result))
            metrics.submission_held(hub.slug)
            report.held += 1
            continue
        mapped.append((submission, result))
    if not mapped:
        return None
    prepared = _Prepared(batch=Batch())
    if hub.skip_unchanged:
        _load_known(hub, spec, mapped, prepared)
    deliverable = [
        (submission.pk, _objects(hub, spec, submission, result, prepared, report))
        for submission, result in mapped
    ]
    to_send = [(pk, objects) for pk, objects in deliverable if objects.as_dict()]
    prepared.unchanged_only = [pk for pk, objects in deliverable if not objects.as_dict()]
    batch, left_over = batch_build(to_send)
    if left_over:
        submissions_release(pks=left_over, token=token)
    prepared.batch = batch
    return prepared


def _load_known(
    hub: Hub, spec: HubSpec, mapped: list[tuple[Submission, MappingResult]], prepared: _Prepared
) -> None:
    """Who each submission is about, and what Braze already has for them (one query)."""
    for submission, result in mapped:
        key = unchanged.person_key(result.attributes or {}, spec.identity.type)
        if key is not None:
            prepared.person_of[submission.pk] = key
    prepared.known = unchanged.known_hashes(hub_id=hub.pk, person_keys=prepared.person_of.values())


def _objects(
    hub: Hub,
    spec: HubSpec,
    submission: Submission,
    result: MappingResult,
    prepared: _Prepared,
    report: RunReport,
) -> Objects:
    """The submission's Braze objects, without the values Braze already has (skip_unchanged)."""
    objects = objects_of(result)
    key = prepared.person_of.get(submission.pk)
    if not hub.skip_unchanged or key is None or result.attributes is None:
        return objects
    attributes, dropped = unchanged.unchanged_dropped(
        result.attributes,
        prepared.known.get(key, {}),
        identity_type=spec.identity.type,
        creates_users=spec.create_missing_users,
    )
    report.unchanged_skipped += dropped
    return Objects(attributes=(attributes,) if attributes else (), events=objects.events)


def _observe_rate_limit(slot: rate_budget.Slot, result: TrackResult) -> None:
    limits = result.rate_limit
    rate_budget.budget_observe(
        slot=slot,
        limit=limits.limit if limits else None,
        remaining=limits.remaining if limits else None,
        reset=limits.reset if limits else None,
        rate_limited=str(result.outcome) == "rate_limited",
    )


def hold_reason(result: MappingResult) -> Reason:
    return reason("held", messages=[message_parts(p.message) for p in result.problems if p.held])


def _hold(submission: Submission, token: uuid.UUID, why: Reason) -> None:
    Submission.objects.filter(pk=submission.pk, claim_token=token).update(
        status=SubmissionStatus.HELD,
        status_reason=reason_english(why),
        reason=why,
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
    prepared: _Prepared | None = None,
) -> None:
    now = timezone.now()
    metrics.braze_request_observed(hub.slug, result, body=batch.body)
    # A person erased while the request was out (services/erasure): their rows are gone and
    # stay gone; nothing of theirs is recorded. Locked so an erasure waits for this record.
    present = set(
        Submission.objects.select_for_update()
        .filter(pk__in=batch.keys)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    erased = set(batch.keys) - present
    attempt = DeliveryAttempt.objects.create(
        hub=hub,
        started_at=now - timedelta(milliseconds=result.duration_ms),
        duration_ms=result.duration_ms,
        endpoint=braze.rest_endpoint,
        request_body=batch.body_without(erased) if erased else batch.body,
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
        if pk in erased:
            continue
        submission = by_pk[pk]
        attempts = submission.attempts + 1
        decision = decide(
            outcome,
            attempts=attempts - submission.retries_from,
            item_error=item_errors.get(pk),
            rate_limit_reset_in=_reset_in(result),
        )
        # The item keeps only what is its own (Braze's per-item error); the request's outcome is
        # explained once per attempt card, not repeated per item.
        item_error = item_errors.get(pk, "")
        items.append(
            AttemptItem(
                attempt=attempt, submission_id=pk, result=_ITEM_RESULT[decision.action],
                error=item_error,
            )
        )
        if decision.action == Action.DELIVERED:
            delivered.append(pk)
            continue
        why = reason("message", message=item_error) if item_error else _plain_reason(result)
        _apply(submission, token, decision, attempts, why, now, report)
    AttemptItem.objects.bulk_create(items)
    metrics.submission_outcomes_observed(hub.slug, [item.result for item in items])
    if delivered:
        _mark_delivered(delivered, by_pk, token, now)
        if prepared is not None and prepared.person_of:
            _remember_delivered(hub, batch, delivered, prepared)
        after_delivered(hub=hub, submission_ids=delivered)
        report.delivered += len(delivered)
        if (
            braze.status != ConnectionStatus.OK
            or not braze.last_success_at
            or (now - braze.last_success_at) > timedelta(seconds=30)
        ):
            BrazeConnection.objects.filter(pk=braze.pk).update(
                status=ConnectionStatus.OK,
                status_reason="",
                reason=None,  # an earlier test's network failure is history now
                last_success_at=now,
                status_changed_at=now
                if braze.status != ConnectionStatus.OK
                else braze.status_changed_at,
            )
            braze.status, braze.last_success_at = ConnectionStatus.OK, now
    if report.paused:
        connection_pause(braze, why=_plain_reason(result))


def connection_pause(braze: BrazeConnection, *, why: Reason) -> None:
    """Stop delivering with this connection until a person fixes it; submissions wait. The
    first pause is written to the hub's audit log, with why."""
    from integrations.services.audit import audit_record

    was_paused = BrazeConnection.objects.filter(
        pk=braze.pk, status=ConnectionStatus.PAUSED
    ).exists()
    BrazeConnection.objects.filter(pk=braze.pk).update(
        status=ConnectionStatus.PAUSED,
        status_reason=reason_english(why),
        reason=why,
        status_changed_at=timezone.now(),
    )
    braze.status, braze.status_reason, braze.reason = (
        ConnectionStatus.PAUSED, reason_english(why), why
    )
    if not was_paused:
        audit_record(hub=braze.hub, kind="connection", action="paused", reason=why)


def endpoint_refused_reason(endpoint: str) -> Reason:
    return reason("endpoint_refused", url=endpoint[:200])


def after_delivered(*, hub: Hub, submission_ids: list[int]) -> None:
    """Follow-up work for submissions Braze has just accepted (transactional emails)."""
    transactional_enqueue(hub=hub, submission_ids=submission_ids)


def _remember_delivered(hub: Hub, batch: Batch, delivered: list[int], prepared: _Prepared) -> None:
    """Braze accepted these values: remember their hashes for skip_unchanged."""
    identity_type = hub.identity_type
    hashes: dict[str, dict[str, str]] = {}
    for pk in delivered:
        key = prepared.person_of.get(pk)
        for attributes in batch.objects_of(pk).get("attributes", ()):
            if key is not None:
                hashes.setdefault(key, {}).update(unchanged.hashes_of(attributes, identity_type))
    unchanged.delivered_remember(hub_id=hub.pk, delivered=hashes, known=prepared.known)


def _unchanged_reason() -> Reason:
    return reason("unchanged")


def _mark_delivered(
    pks: list[int],
    by_pk: dict[int, Submission],
    token: uuid.UUID,
    now,
    *,
    reason: Reason | None = None,
    attempted: bool = True,
) -> None:
    """One UPDATE for the clean ones; those with skipped-field problems keep their own list."""
    changes = {
        "status": SubmissionStatus.DELIVERED,
        "delivered_at": now,
        "attempts": F("attempts") + (1 if attempted else 0),
        "status_reason": reason_english(reason) if reason else "",
        "reason": reason,
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
    why: Reason,
    now,
    report: RunReport,
) -> None:
    error = reason_english(why)
    common = {"claimed_until": None, "claim_token": None, "problems": submission.problems,
              "reason": why}
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


def _plain_reason(result: TrackResult) -> Reason:
    """Braze's answer (or our network's failure), put into words when shown (explain.py)."""
    return braze_reason(result)


def braze_reason(result: TrackResult) -> Reason:
    return reason("braze", outcome=str(result.outcome), status_code=result.status_code,
                  message=result.message)

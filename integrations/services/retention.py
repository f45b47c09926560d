"""Retention per hub: personal data is removed once older than the hub's ``retention_days``;
what is left (status, times, event kind, outcomes, counts) is deleted after the longer history
window ``RETENTION_HISTORY_DAYS`` (docs/decisions.md, "Retention").

Redacting a submission empties its payload, problems and blind-index hashes, deletes its attempt
items (the per-submission lines of a Braze request: nothing needs them once the request itself
is emptied; ``Submission.attempts`` keeps the count) and empties its transactional emails'
bodies. Redacting a delivery attempt empties the request and Braze's answer. Status, times,
``event``, outcome, status codes and counts stay, so health, charts and history still add up.

A submission still waiting for delivery (``pending``) keeps its data until it is delivered or
fails: delivery needs it. Work is done in batches by id, each its own short transaction; the
next batch is found through partial indexes on rows not yet redacted (migration 0008), so a run
costs what it removes, not what the table holds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from integrations.models import (
    AttemptItem,
    DeliveryAttempt,
    Hub,
    Submission,
    SubmissionStatus,
    TransactionalSend,
    TransactionalStatus,
)

HASH_COLUMNS = ("email_hash", "email_local_hash", "phone_hash", "external_id_hash")


@dataclass
class HubRetention:
    hub: str
    submissions_redacted: int = 0
    attempt_items_deleted: int = 0
    transactional_redacted: int = 0
    attempts_redacted: int = 0
    submissions_deleted: int = 0
    attempts_deleted: int = 0

    def counts(self) -> dict[str, int]:
        return {key: value for key, value in asdict(self).items() if key != "hub"}


@dataclass
class RetentionReport:
    now: datetime
    hubs: list[HubRetention]

    def totals(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for hub in self.hubs:
            for key, value in hub.counts().items():
                totals[key] = totals.get(key, 0) + value
        return totals


def _in_batches(queryset: models.QuerySet, batch_size: int):
    """Yield lists of primary keys of ``queryset`` (keyset by id), each inside its own
    transaction: the caller's writes for one batch commit before the next is read."""
    last = 0
    while True:
        with transaction.atomic():
            ids = list(
                queryset.filter(pk__gt=last).order_by("pk").values_list("pk", flat=True)[
                    :batch_size
                ]
            )
            if not ids:
                return
            yield ids
        last = ids[-1]


def _submissions_redact(hub: Hub, cutoff: datetime, now: datetime, batch_size: int,
                        report: HubRetention) -> None:  # fmt: skip
    due = Submission.objects.filter(
        hub=hub, received_at__lt=cutoff, redacted_at__isnull=True
    ).exclude(status=SubmissionStatus.PENDING)
    for ids in _in_batches(due, batch_size):
        report.submissions_redacted += Submission.objects.filter(
            pk__in=ids, redacted_at__isnull=True
        ).update(
            payload=None, problems=[], payload_legacy=None, problems_legacy=None,
            redacted_at=now, **dict.fromkeys(HASH_COLUMNS, ""),
        )  # fmt: skip
        items = AttemptItem.objects.filter(submission_id__in=ids)
        report.attempt_items_deleted += items.delete()[0]
        report.transactional_redacted += (
            TransactionalSend.objects.filter(submission_id__in=ids)
            .exclude(status=TransactionalStatus.PENDING)
            .update(request_body={}, response_body="", request_body_legacy=None)
        )


def _attempts_redact(hub: Hub, cutoff: datetime, now: datetime, batch_size: int,
                     report: HubRetention) -> None:  # fmt: skip
    due = DeliveryAttempt.objects.filter(hub=hub, started_at__lt=cutoff, redacted_at__isnull=True)
    for ids in _in_batches(due, batch_size):
        report.attempts_redacted += DeliveryAttempt.objects.filter(
            pk__in=ids, redacted_at__isnull=True
        ).update(request_body={}, response_body="", request_body_legacy=None, redacted_at=now)
        AttemptItem.objects.filter(attempt_id__in=ids).exclude(error="").update(error="")


def _history_delete(hub: Hub, cutoff: datetime, batch_size: int, report: HubRetention) -> None:
    """Redacted rows past the history window: deleted (their attempt items and transactional
    emails with them)."""
    old = Submission.objects.filter(hub=hub, received_at__lt=cutoff, redacted_at__isnull=False)
    for ids in _in_batches(old, batch_size):
        report.submissions_deleted += Submission.objects.filter(pk__in=ids).delete()[1].get(
            Submission._meta.label, 0
        )
    old_attempts = DeliveryAttempt.objects.filter(
        hub=hub, started_at__lt=cutoff, redacted_at__isnull=False
    )
    for ids in _in_batches(old_attempts, batch_size):
        report.attempts_deleted += DeliveryAttempt.objects.filter(pk__in=ids).delete()[1].get(
            DeliveryAttempt._meta.label, 0
        )


def hub_retention_apply(
    hub: Hub, *, now: datetime, batch_size: int, history_days: int
) -> HubRetention:
    report = HubRetention(hub=hub.slug)
    cutoff = now - timedelta(days=hub.retention_days)
    _submissions_redact(hub, cutoff, now, batch_size, report)
    _attempts_redact(hub, cutoff, now, batch_size, report)
    history_cutoff = now - timedelta(days=max(history_days, hub.retention_days))
    _history_delete(hub, history_cutoff, batch_size, report)
    return report


def retention_apply(
    *,
    now: datetime | None = None,
    hubs: models.QuerySet[Hub] | None = None,
    batch_size: int | None = None,
    history_days: int | None = None,
) -> RetentionReport:
    """Apply every hub's retention window (or those of ``hubs``) as of ``now``. Running it again
    finds nothing more to do."""
    now = now or timezone.now()
    batch_size = max(1, batch_size or settings.RETENTION_BATCH_SIZE)
    history_days = history_days if history_days is not None else settings.RETENTION_HISTORY_DAYS
    hubs = Hub.objects.all() if hubs is None else hubs
    return RetentionReport(
        now=now,
        hubs=[
            hub_retention_apply(hub, now=now, batch_size=batch_size, history_days=history_days)
            for hub in hubs.order_by("pk")
        ],
    )

"""The charts' hourly rollup (``HubHourlyStats``), recomputed off the webhook's path.

A django-q2 schedule runs ``hub_stats_refresh`` every minute (migration 0012). For each hub that
received or sent anything in the last ``OVERLAP`` (or that has no rows yet), it recomputes:

* the previous and the current hour, whole;
* the older hours (up to ``HISTORY_DAYS``) whose submissions a delivery attempt touched since,
  because their status changed (delivered, failed, held after a retry or a redelivery);
* a hub's last ``HISTORY_DAYS`` on its first run, a day per query.

Every query is a range scan on an existing index: ``submission_hub_recent`` (hub, received_at),
``submission_hub_delivered`` (hub, delivered_at; delivered rows only) and ``attempt_hub_recent``
(hub, started_at). Recomputing replaces the hour's rows, so a run that is repeated or overlaps
another hour's is harmless. The webhook writes nothing more than before.

Not followed: a submission erased (right to erasure) stays counted in the hour it arrived.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable

from django.core.cache import cache
from django.db import transaction
from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import TruncHour
from django.utils import timezone

from integrations.models import DeliveryAttempt, Hub, Submission, SubmissionStatus
from integrations.models_stats import DELAY_BUCKETS_S, HubHourlyStats, StatsSource

HISTORY_DAYS = 30
OVERLAP = dt.timedelta(minutes=10)  # a missed minute or two is caught up by the next run
LOCK = "hub-stats-refresh-running"
LOCK_SECONDS = 300
UTC = dt.UTC
HOUR = dt.timedelta(hours=1)

# THE one place where backfilled submissions are told from live ones: the backfill marker
# (Submission.backfill, set on rows read from a CSV export; docs/backfill.md). The rows, the
# charts and their tables show both apart.
SOURCES: dict[str, Q] = {
    StatsSource.LIVE: Q(backfill__isnull=True),
    StatsSource.BACKFILL: Q(backfill__isnull=False),
}
# Braze's answers belong to requests, which may carry both kinds: they are counted as live.
ANSWERS_SOURCE = StatsSource.LIVE

RECEIVED_COLUMNS = {
    SubmissionStatus.DELIVERED: "received_delivered",
    SubmissionStatus.PENDING: "received_pending",
    SubmissionStatus.HELD: "received_held",
    SubmissionStatus.FAILED: "received_failed",
    SubmissionStatus.IGNORED: "received_ignored",
}


def hour_floor(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def hub_stats_refresh(*, now: dt.datetime | None = None) -> dict[str, int]:
    """The minute's run: every hub with something new. A cache lock keeps runs from overlapping."""
    if not cache.add(LOCK, 1, LOCK_SECONDS):
        return {}
    try:
        now = now or timezone.now()
        hubs = hours = 0
        for hub_id, has_rows in list(hubs_to_refresh(now)):
            hours += hub_stats_update(hub_id=hub_id, now=now, first=not has_rows)
            hubs += 1
        return {"hubs": hubs, "hours": hours}
    finally:
        cache.delete(LOCK)


def hubs_to_refresh(now: dt.datetime) -> QuerySet:
    """(hub id, has rows) of the hubs that received or sent something in the last OVERLAP, or
    that received something in HISTORY_DAYS but have no rows yet: an EXISTS probe per hub."""
    since = now - OVERLAP
    history = now - dt.timedelta(days=HISTORY_DAYS)
    received = Submission.objects.filter(hub_id=OuterRef("pk"), received_at__gte=since)
    attempted = DeliveryAttempt.objects.filter(hub_id=OuterRef("pk"), started_at__gte=since)
    has_rows = HubHourlyStats.objects.filter(hub_id=OuterRef("pk"))
    recent = Submission.objects.filter(hub_id=OuterRef("pk"), received_at__gte=history)
    return (
        Hub.objects.annotate(has_rows=Exists(has_rows))
        .filter(Exists(received) | Exists(attempted) | (Q(has_rows=False) & Exists(recent)))
        .order_by("pk")
        .values_list("pk", "has_rows")
    )


def hub_stats_update(*, hub_id: int, now: dt.datetime, first: bool = False) -> int:
    """Recompute what may have changed for one hub; returns the number of hours recomputed."""
    current = hour_floor(now)
    start = current - HOUR
    oldest = current - dt.timedelta(days=HISTORY_DAYS)
    if first:
        recomputed = 0
        day = oldest
        while day < start:
            recomputed += hub_stats_recompute(hub_id=hub_id, start=day,
                                              end=min(day + dt.timedelta(days=1), start), now=now)
            day += dt.timedelta(days=1)
    else:
        recomputed = 0
        for hour in _older_hours_touched(hub_id, since=now - OVERLAP, oldest=oldest, before=start):
            recomputed += hub_stats_recompute(hub_id=hub_id, start=hour, end=hour + HOUR, now=now)
    return recomputed + hub_stats_recompute(hub_id=hub_id, start=start, end=current + HOUR,
                                            now=now)


def _older_hours_touched(hub_id: int, *, since: dt.datetime, oldest: dt.datetime,
                         before: dt.datetime) -> list[dt.datetime]:
    return sorted(older_hours_touched(hub_id, since=since, oldest=oldest, before=before))


def older_hours_touched(hub_id: int, *, since: dt.datetime, oldest: dt.datetime,
                        before: dt.datetime) -> QuerySet:
    """Hours (by received_at) of the submissions in this hub's attempts since ``since``: walks
    the attempts (attempt_hub_recent), their items, and each submission by primary key."""
    return (
        Submission.objects.filter(
            hub_id=hub_id, received_at__gte=oldest, received_at__lt=before,
            attempt_items__attempt__hub_id=hub_id,
            attempt_items__attempt__started_at__gte=since,
        )
        .annotate(hour=TruncHour("received_at", tzinfo=UTC))
        .values_list("hour", flat=True)
        .order_by()
        .distinct()
    )


def hub_stats_recompute(*, hub_id: int, start: dt.datetime, end: dt.datetime,
                        now: dt.datetime) -> int:
    """Replace the rows of the hours in [start, end) (whole hours) with fresh counts."""
    rows: dict[tuple[str, dt.datetime], dict] = defaultdict(dict)
    for source, condition in SOURCES.items():
        for hour, status, count in _received(hub_id, start, end, condition):
            row = rows[(source, hour)]
            row["received"] = row.get("received", 0) + count
            column = RECEIVED_COLUMNS.get(status)
            if column:
                row[column] = row.get(column, 0) + count
        for hour, bucket, count in _delivered(hub_id, start, end, condition):
            row = rows[(source, hour)]
            row["delivered"] = row.get("delivered", 0) + count
            histogram = row.setdefault("delay_histogram", [0] * (len(DELAY_BUCKETS_S) + 1))
            histogram[bucket] += count
    for hour, answer, count in _answers(hub_id, start, end):
        rows[(ANSWERS_SOURCE, hour)][f"answers_{answer}"] = count
    with transaction.atomic():
        HubHourlyStats.objects.filter(hub_id=hub_id, source__in=list(SOURCES),
                                      hour__gte=start, hour__lt=end).delete()
        HubHourlyStats.objects.bulk_create(
            HubHourlyStats(hub_id=hub_id, source=source, hour=hour, computed_at=now, **values)
            for (source, hour), values in sorted(rows.items())
        )
    return int((end - start) / HOUR)


def _received(hub_id: int, start, end, condition: Q) -> Iterable[tuple]:
    return (
        Submission.objects.filter(condition, hub_id=hub_id, received_at__gte=start,
                                  received_at__lt=end)
        .annotate(hour=TruncHour("received_at", tzinfo=UTC))
        .values_list("hour", "status")
        .annotate(count=Count("pk"))
        .order_by()
    )


def _delay_bucket() -> Case:
    return Case(
        *(When(delivered_at__lt=F("received_at") + dt.timedelta(seconds=bound), then=Value(i))
          for i, bound in enumerate(DELAY_BUCKETS_S)),
        default=Value(len(DELAY_BUCKETS_S)),
        output_field=IntegerField(),
    )


def _delivered(hub_id: int, start, end, condition: Q) -> Iterable[tuple]:
    return (
        Submission.objects.filter(condition, hub_id=hub_id, status=SubmissionStatus.DELIVERED,
                                  delivered_at__gte=start, delivered_at__lt=end)
        .annotate(hour=TruncHour("delivered_at", tzinfo=UTC), bucket=_delay_bucket())
        .values_list("hour", "bucket")
        .annotate(count=Count("pk"))
        .order_by()
    )


def _answer_class() -> Case:
    return Case(
        When(status_code__gte=200, status_code__lt=300, then=Value("2xx")),
        When(status_code=429, then=Value("429")),
        When(status_code__gte=300, status_code__lt=500, then=Value("4xx")),
        When(status_code__gte=500, then=Value("5xx")),
        default=Value("network"),
    )


def _answers(hub_id: int, start, end) -> Iterable[tuple]:
    return (
        DeliveryAttempt.objects.filter(hub_id=hub_id, started_at__gte=start, started_at__lt=end)
        .annotate(hour=TruncHour("started_at", tzinfo=UTC), answer=_answer_class())
        .values_list("hour", "answer")
        .annotate(count=Count("pk"))
        .order_by()
    )

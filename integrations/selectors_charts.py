"""Reads for the dashboard's charts: at most 48 or 30 × 24 ``HubHourlyStats`` rows per source,
one index range scan (``hub_stats_hour``), summed into hours or local days."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.utils import timezone

from integrations.models_stats import DELAY_BUCKETS_S, HubHourlyStats, StatsSource

SPANS = ("48h", "30d")
RECEIVED_PARTS = ("delivered", "pending", "held", "failed", "ignored")
ANSWER_PARTS = ("2xx", "4xx", "429", "5xx", "network")


@dataclass
class Bucket:
    start: dt.datetime  # an hour, or a local day's midnight
    received: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RECEIVED_PARTS, 0))
    backfill_received: int = 0
    delivered: int = 0
    answers: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ANSWER_PARTS, 0))
    delay_histogram: list[int] = field(default_factory=lambda: [0] * (len(DELAY_BUCKETS_S) + 1))

    @property
    def received_total(self) -> int:
        return sum(self.received.values())

    def delay_percentile(self, q: float) -> float | None:
        return histogram_percentile(self.delay_histogram, q)


def histogram_percentile(histogram: list[int], q: float) -> float | None:
    """The q-quantile (seconds) of a DELAY_BUCKETS_S histogram, linear within its bucket; the
    open last bucket ("over a day") reads as its lower bound."""
    total = sum(histogram)
    if not total:
        return None
    rank = q * total
    seen = 0
    for index, count in enumerate(histogram):
        if count and seen + count >= rank:
            low = DELAY_BUCKETS_S[index - 1] if index else 0.0
            if index == len(DELAY_BUCKETS_S):
                return float(low)
            high = DELAY_BUCKETS_S[index]
            return low + (high - low) * max(rank - seen, 0) / count
        seen += count
    return float(DELAY_BUCKETS_S[-1])


def hub_chart_buckets(*, hub_id: int, span: str, now: dt.datetime | None = None) -> list[Bucket]:
    """The buckets of one chart span, oldest first, empty ones included."""
    now = now or timezone.now()
    hour = now.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    if span == "30d":
        today = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
        starts = [_local_midnight(today - dt.timedelta(days=back)) for back in range(29, -1, -1)]
    else:
        starts = [hour - dt.timedelta(hours=back) for back in range(47, -1, -1)]
    buckets = {start: Bucket(start=start) for start in starts}
    rows = HubHourlyStats.objects.filter(
        hub_id=hub_id, source__in=StatsSource.values, hour__gte=starts[0]
    ).order_by()
    days: dict[dt.date, dt.datetime] = {}
    for row in rows:
        if span == "30d":
            day = timezone.localtime(row.hour).date()
            if day not in days:
                days[day] = _local_midnight(row.hour)
            key = days[day]
        else:
            key = row.hour
        bucket = buckets.get(key)
        if bucket is not None:
            _add(bucket, row)
    return list(buckets.values())


def _local_midnight(moment: dt.datetime) -> dt.datetime:
    """Midnight of the day of ``moment`` in the current time zone (DST-safe)."""
    day = timezone.localtime(moment).date()
    return timezone.make_aware(dt.datetime.combine(day, dt.time()))


def _add(bucket: Bucket, row: HubHourlyStats) -> None:
    if row.source == StatsSource.BACKFILL:
        bucket.backfill_received += row.received
        return
    for part in RECEIVED_PARTS:
        bucket.received[part] += getattr(row, f"received_{part}")
    bucket.delivered += row.delivered
    for part in ANSWER_PARTS:
        bucket.answers[part] += getattr(row, f"answers_{part}")
    for index, count in enumerate(row.delay_histogram or []):
        if index < len(bucket.delay_histogram):
            bucket.delay_histogram[index] += count

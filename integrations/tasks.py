"""django-q2 entry points: ids in, services do the work."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache

from integrations.services.delivery import delivery_run
from integrations.services.hub_stats import hub_stats_refresh as stats_refresh
from integrations.services.retention import retention_apply as retention_run
from integrations.services.sweep import sweep_due
from integrations.services.transactional import transactional_deliver

SWEEP_LOOP_SECONDS = 55
SWEEP_LOCK = "sweep-loop-running"
RETENTION_LOCK = "retention-running"
RETENTION_LOCK_SECONDS = 3600


def deliver_hub(hub_id: int) -> dict:
    report = delivery_run(hub_id=hub_id)
    return {
        "requests": report.requests,
        "delivered": report.delivered,
        "retried": report.retried,
        "failed": report.failed,
        "held": report.held,
        "paused": report.paused,
    }


def backfill_import(backfill_id: int) -> dict:
    from integrations.services.backfill import backfill_import as run

    backfill = run(backfill_id=backfill_id)
    return {"status": backfill.status, "rows_read": backfill.rows_read,
            "rows_queued": backfill.rows_queued}


def deliver_transactional(hub_id: int) -> dict:
    report = transactional_deliver(hub_id=hub_id)
    return {
        "sent": report.sent,
        "retried": report.retried,
        "failed": report.failed,
        "waiting": report.waiting,
    }


def sweep() -> int:
    return sweep_due()


def sweep_loop() -> int:
    """Sweep every SWEEP_INTERVAL_SECONDS for just under a minute.

    django-q2's scheduler wakes only every 30 s and schedules by the minute, so the schedule
    starts this loop once a minute; a cache lock keeps one loop running across all clusters.
    """
    if not cache.add(SWEEP_LOCK, 1, SWEEP_LOOP_SECONDS + 10):
        return 0
    triggered = 0
    try:
        deadline = time.monotonic() + SWEEP_LOOP_SECONDS
        while time.monotonic() < deadline:
            triggered += sweep_due()
            time.sleep(settings.SWEEP_INTERVAL_SECONDS)
    finally:
        cache.delete(SWEEP_LOCK)
    return triggered


def retention_apply() -> dict:
    """Hourly (schedule made by migration 0008): every hub's retention window. A cache lock keeps
    a long first run (an old installation) from being joined by the next hour's."""
    if not cache.add(RETENTION_LOCK, 1, RETENTION_LOCK_SECONDS):
        return {}
    try:
        return retention_run().totals()
    finally:
        cache.delete(RETENTION_LOCK)


def hub_stats_refresh() -> dict:
    """Every minute (schedule made by migration 0012): the charts' hourly counts."""
    return stats_refresh()

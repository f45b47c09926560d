"""Live webhooks go ahead of a running backfill, against the sandbox's rate limit.

A delivery run drains a backfilled backlog in a thread while live submissions arrive; the
sandbox allows 10 requests per 1-second window. Structural checks (no timings): every live
submission goes out in the first request that starts after it arrived (a backfilled backlog is
never in front of it), backfilled rows fill every request, and the budget is never overrun.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connections

from integrations.models import AttemptItem, DeliveryAttempt, Hub, Submission, SubmissionStatus
from integrations.services import backfill as service
from integrations.services.delivery import delivery_run
from integrations.services.insert import row_insert_new
from integrations.services.intake import person_hash_columns
from tests.conftest import komo_entry
from tests.test_backfill import csv_bytes, rows

LIMIT, WINDOW = 10, 1.0
LIVE = 12


def live_submission(hub: Hub, number: int) -> Submission:
    """What the webhook stores (the same INSERT), without its delivery trigger: the running
    delivery thread must find it by itself."""
    payload = komo_entry(email=f"live{number}@example.com")
    from django.utils import timezone

    now = timezone.now()
    row_insert_new(Submission, values={
        "hub_id": hub.pk, "komo_id": payload["id"], "event": payload["event"],
        "komo_timestamp": now, "payload": payload, "received_at": now, "status": "pending",
        "next_attempt_at": now, **person_hash_columns(hub, payload),
    }, unique=("hub", "komo_id"))  # fmt: skip
    return Submission.objects.get(hub=hub, komo_id=payload["id"])


@pytest.mark.django_db(transaction=True)
def test_live_webhooks_are_delivered_ahead_of_a_running_backfill(make_hub, sandbox, settings,
                                                                 tmp_path):  # fmt: skip
    # given: a backlog of 3,000 backfilled rows and a tight rate limit
    settings.VAR_DIR = tmp_path
    settings.BRAZE_RATE_WINDOW_SECONDS = WINDOW
    sandbox.configure(rate_limit=LIMIT, rate_window=WINDOW)
    hub, _ = make_hub(endpoint=sandbox.url, active=False)
    backfill = service.backfill_upload(hub=hub, chunks=[csv_bytes(rows(3000))], file_name="x.csv")
    service.backfill_start(backfill, enqueue=False)
    service.backfill_import(backfill_id=backfill.pk, run_seconds=None)
    Hub.objects.filter(pk=hub.pk).update(active=True)

    # when: delivery drains it in a thread while live submissions arrive
    def drain() -> None:
        try:
            delivery_run(hub_id=hub.pk, run_seconds=4.0)
        finally:
            connections.close_all()

    worker = threading.Thread(target=drain)
    worker.start()
    live = []
    time.sleep(0.5)  # (the backlog is under way)
    for number in range(LIVE):
        live.append(live_submission(hub, number))
        time.sleep(0.23)
    worker.join(timeout=30)

    # then
    attempts = list(DeliveryAttempt.objects.filter(hub=hub).order_by("started_at", "id"))
    assert attempts and not worker.is_alive()
    for submission in live:
        submission.refresh_from_db()
        assert submission.status == SubmissionStatus.DELIVERED
        [item] = AttemptItem.objects.filter(submission=submission)
        before = [a for a in attempts
                  if a.started_at >= submission.received_at and a.pk < item.attempt_id]
        # Only a request already being prepared when it arrived may go before it.
        assert len(before) <= 1, (submission.komo_id, len(before))
    sizes = [len(a.request_body.get("attributes", [])) for a in attempts]
    assert all(size == 75 for size in sizes[:-1])  # backfilled rows fill every request
    statuses = [r["status"] for r in sandbox.requests() if r["path"] == "/users/track"]
    assert 429 not in statuses
    assert Submission.objects.filter(backfill=backfill, status=SubmissionStatus.DELIVERED).count()

"""The safety net: every few seconds, trigger delivery for every hub with due work.

Tasks are only triggers; if one is lost (broker restart, worker killed) the due rows are still in
the database and this sweep enqueues them again. Leases that ran out count as due.
"""

from __future__ import annotations

from django.db.models import Q
from django.utils import timezone

from integrations.models import ConnectionStatus, Submission, SubmissionStatus
from integrations.services.backfill import cancelled_sweep
from integrations.services.dispatch import hub_delivery_trigger
from integrations.services.transactional import transactional_sweep


def sweep_due() -> int:
    now = timezone.now()
    hub_ids = (
        Submission.objects.filter(
            status=SubmissionStatus.PENDING,
            next_attempt_at__lte=now,
            hub__active=True,
            hub__connection__isnull=False,
        )
        .exclude(hub__connection__status=ConnectionStatus.PAUSED)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .values_list("hub_id", flat=True)
        .distinct()
    )
    triggered = sum(hub_delivery_trigger(hub_id=hub_id) for hub_id in hub_ids)
    cancelled_sweep()  # rows of a cancelled backfill that were in a request at the time
    return triggered + transactional_sweep()

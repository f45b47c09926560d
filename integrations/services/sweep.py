"""The safety net: every few seconds, trigger delivery for every hub with due work.

Tasks are only triggers; if one is lost (broker restart, worker killed) the due rows are still in
the database and this sweep enqueues them again. Leases that ran out count as due.

One trigger per hub: the query walks the hubs (a few dozen rows) and asks each, with ``EXISTS``
on the partial ``submission_due`` index, whether it has due work. A ``DISTINCT`` over the due
submissions themselves read every due row (and, with the model's default ordering in the
``SELECT``, returned one row per submission, so a backlog triggered a hub hundreds of times per
sweep).
"""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from integrations.models import ConnectionStatus, Hub, Submission, SubmissionStatus
from integrations.services.backfill import cancelled_sweep
from integrations.services.dispatch import hub_delivery_trigger
from integrations.services.transactional import transactional_sweep


def hubs_with_due_submissions(now=None) -> QuerySet:
    """Ids of the active, connected, unpaused hubs with at least one due submission; each once."""
    now = now or timezone.now()
    due = Submission.objects.filter(
        hub_id=OuterRef("pk"), status=SubmissionStatus.PENDING, next_attempt_at__lte=now
    ).filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
    return (
        Hub.objects.filter(active=True, connection__isnull=False)
        .exclude(connection__status=ConnectionStatus.PAUSED)
        .filter(Exists(due))
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def sweep_due() -> int:
    hub_ids = list(hubs_with_due_submissions())  # read before triggering anything
    triggered = sum(hub_delivery_trigger(hub_id=hub_id) for hub_id in hub_ids)
    cancelled_sweep()  # rows of a cancelled backfill that were in a request at the time
    return triggered + transactional_sweep()

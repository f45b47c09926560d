"""Triggering delivery tasks without flooding the broker.

A burst of webhooks for one hub must not enqueue one task each. A short-lived cache flag per hub
coalesces them: intake enqueues only when it sets the flag, and ``deliver_hub`` clears the flag
*before* it claims work, so a submission committed after the clear sets it again and gets its own
task, while one committed before is claimed by the running task. The periodic sweep covers any
trigger that is lost anyway (broker down, worker crash).

The webhook sets the flag in the same Redis round trip as its intake count
(``services.intake_window.intake_settle``) and then calls ``hub_delivery_enqueue`` when it set it.
"""

from __future__ import annotations

import logging

from django.core.cache import cache
from django_q.tasks import async_task

log = logging.getLogger(__name__)

FLAG_SECONDS = 60


def hub_delivery_flag(hub_id: int) -> str:
    """The default cache's key of the hub's "a delivery task is queued" flag."""
    return f"deliver-hub-queued:{hub_id}"


def hub_delivery_flag_set(hub_id: int) -> bool:
    """Set the hub's flag; True if it was not set (then the caller enqueues the task)."""
    return cache.add(hub_delivery_flag(hub_id), 1, FLAG_SECONDS)


def hub_delivery_trigger(*, hub_id: int, force: bool = False) -> bool:
    """Enqueue ``deliver_hub(hub_id)`` unless one is already queued. True if enqueued."""
    try:
        if not hub_delivery_flag_set(hub_id) and not force:
            return False
    except Exception:  # the sweep will pick the work up; a trigger must never fail intake
        log.exception("could not enqueue delivery for hub %s", hub_id)
        return False
    return hub_delivery_enqueue(hub_id=hub_id)


def hub_delivery_enqueue(*, hub_id: int) -> bool:
    """Enqueue ``deliver_hub(hub_id)`` (the caller has set the hub's flag). True if enqueued."""
    try:
        async_task(
            "integrations.tasks.deliver_hub", hub_id, task_name=f"deliver-hub-{hub_id}"[:100]
        )
    except Exception:  # the sweep will pick the work up; a trigger must never fail intake
        log.exception("could not enqueue delivery for hub %s", hub_id)
        return False
    return True


def hub_delivery_helper(*, hub_id: int) -> bool:
    """Ask for one more worker on this hub's backlog (coalesced like any trigger).

    Not in django-q2's sync mode (tests), where the helper would run inside the caller's run."""
    from django_q.conf import Conf

    if Conf.SYNC:
        return False
    return hub_delivery_trigger(hub_id=hub_id)


def hub_delivery_flag_clear(*, hub_id: int) -> None:
    cache.delete(hub_delivery_flag(hub_id))

"""Braze transactional emails for Komo moments (issue "every Komo event kind"): filled in by the
event-kinds work. ``transactional_enqueue`` is called by delivery for each delivered batch."""

from __future__ import annotations

from integrations.models import Hub


def transactional_enqueue(*, hub: Hub, submission_ids: list[int]) -> int:
    """Create the transactional sends due for these delivered submissions; returns how many."""
    if not hub.transactional:
        return 0
    raise NotImplementedError("transactional sends are configured but not implemented yet")

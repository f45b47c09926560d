"""The per-hub intake limit as a DRF throttle.

The decision is ``intake_rate_wait``'s, on this process's coalesced view of the hub's shared
count (no round trip per webhook; ``integrations/services/intake_window.py``). Counting happens
after the answer is known (``intake_settle``: in ``submission_receive`` for a stored body, in the
view for a refused one), so a throttled webhook is not counted."""

from __future__ import annotations

from typing import Any

from rest_framework.throttling import BaseThrottle

from integrations.services.intake_window import intake_rate_wait


class HubIntakeThrottle(BaseThrottle):
    """``WEBHOOK_RATE_PER_MINUTE`` per hub (the hub's ``intake_rate_per_minute`` overrides; 0 =
    no limit); the view answers 429 with ``Retry-After`` (the seconds left in the minute)."""

    seconds = 0

    def allow_request(self, request: Any, view: Any) -> bool:
        self.seconds = intake_rate_wait(hub=request.auth)
        return not self.seconds

    def wait(self) -> int:
        return self.seconds

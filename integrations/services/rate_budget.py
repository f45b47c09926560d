"""One rate budget per Braze API key, shared by every hub, worker and machine using that key.

The budget is what Braze last told us in ``X-RateLimit-Remaining`` / ``X-RateLimit-Reset``, kept
in the Django cache (Redis in production, the database cache on the embedded default), keyed by
the key's fingerprint, never the key. Between answers each sender takes one unit from the shared
counter, so many workers do not all spend the same "remaining".
"""

from __future__ import annotations

import time

from django.core.cache import cache

# Keep a small reserve so concurrent senders that read the same counter do not overshoot.
RESERVE = 1


def _keys(fingerprint: str) -> tuple[str, str]:
    return f"braze-budget:{fingerprint}:remaining", f"braze-budget:{fingerprint}:reset"


def budget_wait_seconds(*, fingerprint: str, now: float | None = None) -> float:
    """Seconds to wait before the next request with this key; 0 means send now.

    Takes one unit of the budget when it answers 0.
    """
    now = time.time() if now is None else now
    remaining_key, reset_key = _keys(fingerprint)
    reset = cache.get(reset_key)
    if reset is None or reset <= now:
        return 0.0
    try:
        remaining = cache.decr(remaining_key)
    except ValueError:  # no counter: nothing known about this window
        return 0.0
    if remaining < RESERVE:
        return max(0.0, reset - now)
    return 0.0


def budget_record(
    *, fingerprint: str, remaining: int | None, reset: int | None, now: float | None = None
) -> None:
    """Store Braze's latest word on this key's window."""
    if remaining is None or reset is None:
        return
    now = time.time() if now is None else now
    ttl = max(1, int(reset - now) + 1)
    remaining_key, reset_key = _keys(fingerprint)
    cache.set_many({remaining_key: int(remaining), reset_key: int(reset)}, ttl)


def budget_exhaust(*, fingerprint: str, reset: float) -> None:
    """After a 429: nobody sends with this key until ``reset``."""
    budget_record(fingerprint=fingerprint, remaining=0, reset=int(reset))

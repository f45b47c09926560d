"""The retry policy: what a Braze answer means for each submission of a request (pure).

One function, ``decide``, turns an outcome into an action; callers never re-derive it.
Backoff is exponential with ±20 % jitter over more than 24 hours (10 s … 24 h, 8 retries,
about 48 h in all); 429 waits for ``X-RateLimit-Reset`` and does not use up a retry.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass

RETRY_DELAYS_SECONDS = (10, 60, 300, 1800, 7200, 21600, 43200, 86400)
JITTER = 0.2
RATE_LIMIT_FALLBACK_SECONDS = 5


class Action(enum.StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"  # try again later; counts as an attempt
    WAIT = "wait"  # try again later; does not count (rate limit)
    PAUSE = "pause"  # the connection needs a person; the submission waits
    FAIL = "fail"  # permanent


@dataclass(frozen=True)
class Decision:
    action: Action
    delay_seconds: float = 0.0


RETRYABLE = frozenset({"server_error", "timeout", "connection_error"})
PAUSING = frozenset({"unauthorized", "forbidden", "not_found", "redirect"})
PERMANENT = frozenset({"bad_request", "too_large"})


def backoff_seconds(attempts: int, rng: random.Random | None = None) -> float | None:
    """Delay before retry number ``attempts`` (1-based), or None when the retries are used up."""
    if attempts < 1 or attempts > len(RETRY_DELAYS_SECONDS):
        return None
    base = RETRY_DELAYS_SECONDS[attempts - 1]
    return base * (1 + (rng or random).uniform(-JITTER, JITTER))


def decide(
    outcome: str,
    *,
    attempts: int,
    item_error: str | None = None,
    rate_limit_reset_in: float | None = None,
    rng: random.Random | None = None,
) -> Decision:
    """The action for one submission after a request.

    ``attempts`` counts this request. ``item_error`` is Braze's per-item error for this
    submission (201 with ``errors[]``): the rest of the request was processed, this item was not,
    and sending the same object again would fail the same way.
    """
    if outcome in ("success", "partial"):
        return Decision(Action.FAIL) if item_error else Decision(Action.DELIVERED)
    if outcome == "rate_limited":
        wait = rate_limit_reset_in if rate_limit_reset_in and rate_limit_reset_in > 0 else None
        return Decision(
            Action.WAIT, (wait or RATE_LIMIT_FALLBACK_SECONDS) + (rng or random).uniform(0, 1)
        )
    if outcome in PAUSING:
        return Decision(Action.PAUSE)
    if outcome in PERMANENT:
        return Decision(Action.FAIL)
    delay = backoff_seconds(attempts, rng)
    return Decision(Action.FAIL) if delay is None else Decision(Action.RETRY, delay)

"""Each hub's intake window: the webhook rate limit and the delivery signal, with as few shared
cache round trips as correctness allows.

Every web process keeps, per hub, a ``_Window``: the shared count it last read, the webhooks it has
counted since (not sent yet), and when it last sent the count and last signalled delivery.

* **The rate limit** (``intake_rate_wait``) is decided on that local view, with no round trip: the
  shared count as last read plus this process's unsent webhooks. The count is sent at most every
  ``WEBHOOK_COALESCE_SECONDS`` (0.1 s) or once ``max(1, limit // 100)`` webhooks wait, whichever
  comes first, so a hub with a small limit is counted on every webhook, and a busy hub with a
  large one in one ``INCRBY`` per interval. Over all web processes, a hub can get at most
  ``processes × (limit // 100 + 1)`` webhooks more than its limit in a window.
* **The delivery signal**: after a stored row is committed, the hub's "a delivery task is queued"
  flag is set (``SET NX``; a task is enqueued when it was not set), at most once per
  ``WEBHOOK_COALESCE_SECONDS`` per process. A webhook that skips it is still delivered without
  waiting for the sweep: the flag was set less than that interval before its commit, so the run
  that clears the flag does its last check for due work at least that long after clearing it
  (``delivery_run``'s linger), which is after the commit.

Both go in one Redis round trip when both are due (``portal.cache.RedisCache.window_incr``).
Inside a transaction (tests, admin actions) the signal waits for the commit and is never skipped.
Neither may fail a webhook: a cache that is down counts nothing (and limits nothing), and a lost
signal is made good by the sweep.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.db import connection, transaction

from integrations.models import Hub
from integrations.services.dispatch import (
    FLAG_SECONDS,
    hub_delivery_enqueue,
    hub_delivery_flag,
    hub_delivery_flag_set,
    hub_delivery_trigger,
)

log = logging.getLogger(__name__)

RATE_WINDOW_SECONDS = 60
THROTTLE_CACHE = "throttle"
# Unsent webhooks a process may hold back, as a share of the hub's limit (1 %).
UNSENT_SHARE = 100
NEVER = -math.inf


@dataclass
class _Window:
    number: int  # the window (minute) these counts belong to
    seen: int = 0  # the shared count as this process last read it (its own sent ones included)
    unsent: int = 0  # this process's webhooks counted since
    sent_at: float = NEVER  # time.monotonic() of the last count sent
    signalled_at: float = NEVER  # time.monotonic() of the last delivery signal set


_windows: dict[int, _Window] = {}


def intake_windows_forget() -> None:
    """Forget every hub's window in this process (tests: hub ids are reused)."""
    _windows.clear()


def _limit(hub: Hub) -> int:
    return hub.intake_rate_per_minute or settings.WEBHOOK_RATE_PER_MINUTE


def _window(hub: Hub, now: float) -> _Window:
    number = int(now // RATE_WINDOW_SECONDS)
    window = _windows.get(hub.pk)
    if window is None or window.number != number:
        signalled_at = window.signalled_at if window is not None else NEVER
        window = _windows[hub.pk] = _Window(number, signalled_at=signalled_at)
    return window


def intake_rate_wait(*, hub: Hub, now: float | None = None) -> int:
    """0 when the hub may send one more webhook this minute, else the seconds until its window
    ends (for ``Retry-After``). ``Hub.intake_rate_per_minute`` overrides
    ``settings.WEBHOOK_RATE_PER_MINUTE`` (0 there = no limit). No round trip (see above)."""
    limit = _limit(hub)
    if not limit:
        return 0
    now = time.time() if now is None else now
    window = _window(hub, now)
    if window.seen + window.unsent < limit:
        return 0
    return max(1, math.ceil((window.number + 1) * RATE_WINDOW_SECONDS - now))


def intake_settle(*, hub: Hub, trigger: bool = False, now: float | None = None) -> None:
    """Count one webhook of the hub in its window and, with ``trigger`` (a new row to deliver),
    signal delivery once it is committed; sends what is due (see above) in one round trip."""
    limit = _limit(hub)
    now = time.time() if now is None else now
    clock = time.monotonic()
    interval = settings.WEBHOOK_COALESCE_SECONDS
    window = _window(hub, now)
    if limit:
        window.unsent += 1
    committed = not connection.in_atomic_block
    if trigger and not committed:
        transaction.on_commit(lambda: hub_delivery_trigger(hub_id=hub.pk))
    signal = trigger and committed and clock - window.signalled_at >= interval
    send = limit and (
        signal
        or clock - window.sent_at >= interval
        or window.unsent >= max(1, limit // UNSENT_SHARE)
    )
    if not (signal or send):
        return
    key = f"intake-rate:{hub.pk}:{window.number}"
    try:
        count, enqueue = _send(hub, key, window.unsent if send else 0, signal)
    except Exception:  # the limit protects intake; it must never be the reason intake fails
        log.warning("webhook intake: cache unavailable; not counting", exc_info=True)
        window.unsent = 0  # what cannot be counted limits nothing
        return
    if send:
        window.seen, window.unsent, window.sent_at = count, 0, clock
    if signal:
        window.signalled_at = clock
        if enqueue:
            hub_delivery_enqueue(hub_id=hub.pk)


def _send(hub: Hub, key: str, amount: int, signal: bool) -> tuple[int, bool]:
    """Add ``amount`` to the window's shared count and, with ``signal``, set the hub's delivery
    flag: the count after, and whether the flag was newly set (a task must be enqueued)."""
    timeout = RATE_WINDOW_SECONDS + 5
    default = caches["default"]
    if hasattr(default, "window_incr"):  # Redis (portal.cache): one round trip for both
        flag = hub_delivery_flag(hub.pk) if signal else None
        return default.window_incr(
            key, amount, timeout, flag_key=flag, flag_timeout=FLAG_SECONDS
        )
    count = _count_add(caches[THROTTLE_CACHE], key, amount, timeout) if amount else 0
    # The embedded default: the count in this process's memory, the flag in the database cache.
    return count, signal and hub_delivery_flag_set(hub.pk)


def _count_add(cache: Any, key: str, amount: int, timeout: int) -> int:
    try:
        return cache.incr(key, amount)
    except ValueError:  # first hit of the window (or the key just expired)
        if cache.add(key, amount, timeout):
            return amount
        return cache.incr(key, amount)

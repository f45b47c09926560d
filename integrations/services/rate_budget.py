"""One rate budget per Braze API key, shared by every hub, worker and machine using that key.

Braze counts ``/users/track`` requests per key in fixed windows (3,000 per 3 s, braze-api.md §2)
and says on every answer where the key stands: ``X-RateLimit-Limit``, ``-Remaining`` and
``-Reset`` (UTC epoch seconds, whole). The budget lives in the Django cache, keyed by the key's
fingerprint (never the key): Redis in production, where INCR is atomic across machines; on the
database cache every read-modify-write runs under a database lock instead (an advisory lock on
PostgreSQL, the write lock on SQLite), so two processes never hand out the same slot.

How it holds the limit:

* Time is cut into *epochs*, one per Braze window as we see it. Before a request is sent it takes
  a numbered *slot* of the current epoch (an atomic increment); a slot number above
  ``limit - RESERVE`` is refused with the seconds until the epoch ends, so all our senders
  together never send more than Braze allows in one window.
* The epoch's end is learnt from the first answer in it: Braze's ``Reset``, or the moment that
  answer arrived plus the window length, whichever is earlier. (Reset is rounded up to a whole
  second; trusting it alone would idle up to a second of every 3-second window. The window began
  no later than the moment our request reached Braze, so arrival + window is never too early.)
* A slot asked for in the last ``GUARD_SECONDS`` of an epoch waits for the next one, so a request
  in flight across the boundary is never counted in a window it did not land in.
* Answers feed the budget: another system using the same key shows up as a lower ``Remaining``
  and raises our count; a 429 fills the epoch until ``Reset`` and, because it means our picture
  was wrong, the window length is not trusted for ``DISTRUST_SECONDS`` (Reset alone is used).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache
from django.db import connection, transaction

# Slots of every window left unused: room for a sender we cannot see (a second system on the key).
RESERVE = 1
# Slots asked for this close to an epoch's end go to the next epoch.
GUARD_SECONDS = 0.1
# Before Braze has told us the limit, one request at a time finds it out.
PROBE_SLOTS = 1
# An epoch whose end nobody learnt (every answer lost) is given up after this long.
STALE_EPOCH_SECONDS = 10.0
# How long the window length is ignored after an unexpected 429.
DISTRUST_SECONDS = 600
# How long a refused sender waits before asking again when the epoch's end is not known yet.
POLL_SECONDS = 0.05
_KEY_TTL = 600
_ATOMIC_CACHES = (RedisCache, LocMemCache)


@dataclass(frozen=True)
class Slot:
    """Permission to send one request in the epoch that started at ``epoch``."""

    fingerprint: str
    epoch: float
    number: int


@dataclass(frozen=True)
class Grant:
    """A slot, or (``slot`` None) how many seconds to wait before asking again."""

    slot: Slot | None
    wait: float = 0.0


def _key(fingerprint: str, name: str) -> str:
    return f"braze-budget:{fingerprint}:{name}"


def _epoch_key(fingerprint: str, epoch: float, name: str) -> str:
    return _key(fingerprint, f"{name}:{epoch!r}")


def window_seconds() -> float:
    return float(getattr(settings, "BRAZE_RATE_WINDOW_SECONDS", 3.0))


# --- atomicity ---------------------------------------------------------------------------------


def _atomic_cache() -> bool:
    """True when the cache's ``incr`` and ``add`` are atomic for every process that shares it
    (Redis; local memory is shared by nobody else)."""
    return isinstance(caches["default"], _ATOMIC_CACHES)


def _lock_id(fingerprint: str) -> int:
    return int.from_bytes(hashlib.sha256(fingerprint.encode()).digest()[:8], "big", signed=True)


@contextlib.contextmanager
def _serialised(fingerprint: str) -> Iterator[None]:
    """Make a read-modify-write of this key's budget exclusive across processes."""
    if _atomic_cache():
        yield
        return
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_lock_id(fingerprint)])
        # SQLite: settings open every transaction with BEGIN IMMEDIATE, the database's write lock.
        yield


def _count(key: str, delta: int = 1) -> int:
    """Atomically add ``delta`` to a counter that may not exist yet; its new value."""
    try:
        return cache.incr(key, delta)
    except ValueError:
        cache.add(key, 0, _KEY_TTL)
        return cache.incr(key, delta)


# --- epochs ------------------------------------------------------------------------------------


def _current_epoch(fingerprint: str, now: float) -> tuple[float, float | None]:
    """The current epoch's start and its end when known, advancing past an epoch that is over.

    Every process computes the same next start (the stored end), so a race only writes the same
    value twice."""
    epoch_key = _key(fingerprint, "epoch")
    epoch = cache.get(epoch_key)
    if epoch is None:
        cache.add(epoch_key, now, _KEY_TTL)
        epoch = cache.get(epoch_key, now)
    end = cache.get(_epoch_key(fingerprint, epoch, "end"))
    if end is None and now >= epoch + STALE_EPOCH_SECONDS:
        end = epoch + STALE_EPOCH_SECONDS * math.floor((now - epoch) / STALE_EPOCH_SECONDS)
    if end is not None and now >= end:
        cache.set(epoch_key, end, _KEY_TTL)
        epoch, end = end, cache.get(_epoch_key(fingerprint, end, "end"))
    return epoch, end


def _allowed(fingerprint: str) -> int:
    limit = cache.get(_key(fingerprint, "limit"))
    return PROBE_SLOTS if limit is None else max(1, int(limit) - RESERVE)


def budget_acquire(*, fingerprint: str, now: float | None = None) -> Grant:
    """A slot to send one request with this key now, or the seconds to wait first."""
    now = time.time() if now is None else now
    with _serialised(fingerprint):
        epoch, end = _current_epoch(fingerprint, now)
        if end is not None and end - now < GUARD_SECONDS:
            return Grant(None, max(end - now, 0.001))
        number = _count(_epoch_key(fingerprint, epoch, "n"))
        if number <= _allowed(fingerprint):
            return Grant(Slot(fingerprint, epoch, number))
    return Grant(None, (end - now) if end is not None else POLL_SECONDS)


def budget_peek_wait(*, fingerprint: str, now: float | None = None) -> float:
    """Seconds until a slot may be free (0: maybe now), without taking one."""
    now = time.time() if now is None else now
    epoch, end = _current_epoch(fingerprint, now)
    used = cache.get(_epoch_key(fingerprint, epoch, "n")) or 0
    if end is not None and used >= _allowed(fingerprint):
        return max(0.0, end - now)
    return 0.0


@dataclass(frozen=True)
class Turn:
    """A place in the key's paced schedule: send after ``wait`` seconds; ``granted`` False: no
    place was left in this window, ask again after ``wait`` (its end)."""

    wait: float
    granted: bool = True


def budget_pace_turn(*, fingerprint: str, now: float | None = None) -> Turn:
    """Take the next turn in the key's paced schedule.

    A window's slots spread evenly over it, one turn per spacing ((window − guard) ÷ slots:
    0.1 s at 30 per 3 s, 1 ms at Braze's 3,000). Runs delivering backfilled rows take a turn
    before each claim, so a backlog never spends a window in its first second and a webhook
    arriving later is claimed within one spacing. Turns are numbered atomically, so two senders
    never share one; past the window's last slot there is none (wait for its end, ask again:
    sending then would take a slot of the next window ahead of its own turns)."""
    now = time.time() if now is None else now
    if cache.get(_key(fingerprint, "limit")) is None:
        return Turn(0.0)  # the limit is not known yet: the probe finds it out
    with _serialised(fingerprint):
        epoch, end = _current_epoch(fingerprint, now)
        turn = _count(_epoch_key(fingerprint, epoch, "turn"))
    allowed = _allowed(fingerprint)
    due = epoch + (turn - 1) * ((window_seconds() - GUARD_SECONDS) / allowed)
    if turn > allowed or (end is not None and due >= end - GUARD_SECONDS):
        return Turn(max(end - now, 0.001) if end is not None else POLL_SECONDS, granted=False)
    return Turn(min(max(0.0, due - now), window_seconds()))


def budget_observe(
    *,
    slot: Slot,
    limit: int | None,
    remaining: int | None,
    reset: int | None,
    rate_limited: bool = False,
    received_at: float | None = None,
) -> None:
    """Feed Braze's answer to the request sent with ``slot`` into the shared budget."""
    fingerprint = slot.fingerprint
    received_at = time.time() if received_at is None else received_at
    with _serialised(fingerprint):
        if limit is not None and limit > 0:
            cache.set(_key(fingerprint, "limit"), int(limit), _KEY_TTL)
        if rate_limited:
            _exhaust(fingerprint, reset=reset or received_at + window_seconds(), now=received_at)
            cache.set(_key(fingerprint, "distrust"), 1, DISTRUST_SECONDS)
            return
        epoch, _end = _current_epoch(fingerprint, received_at)
        if slot.epoch != epoch:
            return  # an answer from an epoch that is over says nothing about this one
        if reset is None:
            if cache.get(_key(fingerprint, "limit")) is None:
                # A probe that learnt nothing (no answer, no headers): let the next one probe.
                _count(_epoch_key(fingerprint, epoch, "n"), -1)
            return
        cache.add(_epoch_key(fingerprint, epoch, "end"), _end_of(fingerprint, reset, received_at))
        if limit is not None and remaining is not None:
            _catch_up(fingerprint, epoch, used=limit - remaining)


def _end_of(fingerprint: str, reset: int, received_at: float) -> float:
    if cache.get(_key(fingerprint, "distrust")):
        return float(reset)
    return min(float(reset), received_at + window_seconds())


def _catch_up(fingerprint: str, epoch: float, *, used: int) -> None:
    """Braze counted more than we sent (someone else uses the key): count those too."""
    key = _epoch_key(fingerprint, epoch, "n")
    ours = cache.get(key) or 0
    if used > ours:
        _count(key, used - ours)


def _exhaust(fingerprint: str, *, reset: float, now: float) -> None:
    """Nobody sends with this key until ``reset``: the current epoch ends then, and is full."""
    epoch, end = _current_epoch(fingerprint, now)
    cache.set(_epoch_key(fingerprint, epoch, "end"), max(float(reset), end or 0.0), _KEY_TTL)
    limit = cache.get(_key(fingerprint, "limit")) or PROBE_SLOTS
    _count(_epoch_key(fingerprint, epoch, "n"), int(limit) + RESERVE)


# --- without a slot (callers that only read Braze's headers) -----------------------------------


def budget_wait_seconds(*, fingerprint: str, now: float | None = None) -> float:
    """Take a slot for one request: 0 means send now, else the seconds to wait first."""
    return budget_acquire(fingerprint=fingerprint, now=now).wait


def budget_record(
    *, fingerprint: str, remaining: int | None, reset: int | None, now: float | None = None
) -> None:
    """Braze's word on this key from an answer sent without a slot: spent means wait for Reset."""
    if remaining is None or reset is None:
        return
    now = time.time() if now is None else now
    if remaining <= RESERVE and reset > now:
        budget_exhaust(fingerprint=fingerprint, reset=reset, now=now)


def budget_exhaust(*, fingerprint: str, reset: float, now: float | None = None) -> None:
    """After a 429 or an empty Remaining: nobody sends with this key until ``reset``."""
    now = time.time() if now is None else now
    with _serialised(fingerprint):
        _exhaust(fingerprint, reset=reset, now=now)

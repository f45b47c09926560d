"""The shared rate budget per Braze API key: slots, epochs learnt from Braze's headers, 429s, and
no overshoot when several senders (threads with their own cache clients and database
connections, like separate processes) share one key."""

from __future__ import annotations

import threading

import pytest
from django.core.cache import cache
from django.db import connection

from integrations.services import rate_budget
from integrations.services.rate_budget import RESERVE, budget_acquire, budget_observe

FP = "fp-test-key"
T0 = 1_800_000_000.25  # an instant in the middle of a second


@pytest.fixture(autouse=True)
def _clean_cache(db, settings):
    settings.BRAZE_RATE_WINDOW_SECONDS = 3.0
    cache.clear()
    yield
    cache.clear()


def learn(limit: int = 20, *, now: float = T0, remaining: int | None = None) -> rate_budget.Slot:
    """One request in a fresh epoch at ``now``, answered at ``now`` with Braze's headers."""
    grant = budget_acquire(fingerprint=FP, now=now)
    assert grant.slot is not None
    budget_observe(
        slot=grant.slot,
        limit=limit,
        remaining=limit - 1 if remaining is None else remaining,
        reset=int(now) + 4,  # Braze rounds the window's end up to a whole second
        received_at=now,
    )
    return grant.slot


def test_the_first_request_probes_alone_until_braze_states_the_limit():
    first = budget_acquire(fingerprint=FP, now=T0)
    second = budget_acquire(fingerprint=FP, now=T0)
    assert first.slot is not None
    assert second.slot is None
    assert 0 < second.wait <= rate_budget.POLL_SECONDS


def test_a_window_hands_out_the_limit_less_the_reserve_then_waits_for_its_end():
    learn(limit=20)
    granted = [budget_acquire(fingerprint=FP, now=T0 + 0.5) for _ in range(30)]
    assert sum(g.slot is not None for g in granted) == 20 - RESERVE - 1  # the probe took one
    refused = granted[-1]
    assert refused.wait == pytest.approx(3.0 - 0.5)


def test_the_window_ends_at_arrival_plus_length_not_at_the_rounded_reset():
    learn(limit=2)  # 2 - RESERVE = 1 slot: the probe used it
    assert budget_acquire(fingerprint=FP, now=T0 + 2.0).slot is None
    # Braze's Reset says T0 + 3.75 (rounded up); the window began no later than T0.
    assert budget_acquire(fingerprint=FP, now=T0 + 3.0).slot is not None


def test_without_trust_in_the_length_reset_decides(settings):
    cache.set(rate_budget._key(FP, "distrust"), 1, 60)
    learn(limit=2)
    assert budget_acquire(fingerprint=FP, now=T0 + 3.0).slot is None
    assert budget_acquire(fingerprint=FP, now=int(T0) + 4).slot is not None


def test_no_slot_is_handed_out_just_before_the_window_ends():
    learn(limit=100)
    grant = budget_acquire(fingerprint=FP, now=T0 + 3.0 - rate_budget.GUARD_SECONDS / 2)
    assert grant.slot is None
    assert grant.wait == pytest.approx(rate_budget.GUARD_SECONDS / 2)


def test_an_answer_from_an_old_window_does_not_end_the_new_one():
    old = learn(limit=10)
    new = budget_acquire(fingerprint=FP, now=T0 + 3.01).slot
    assert new is not None and new.epoch != old.epoch
    # a late answer to a request of the old window arrives now
    budget_observe(slot=old, limit=10, remaining=5, reset=int(T0) + 4, received_at=T0 + 3.02)
    # the new window's end is still unknown: its slots are not cut short at T0 + 4
    assert budget_acquire(fingerprint=FP, now=int(T0) + 4.5).slot is not None


def test_429_fills_the_window_until_reset_and_stops_trusting_the_length():
    learn(limit=10)
    slot = budget_acquire(fingerprint=FP, now=T0 + 1).slot
    assert slot is not None
    budget_observe(
        slot=slot, limit=10, remaining=0, reset=int(T0) + 9, rate_limited=True, received_at=T0 + 1
    )
    assert budget_acquire(fingerprint=FP, now=T0 + 5).slot is None
    assert budget_acquire(fingerprint=FP, now=int(T0) + 9).slot is not None
    assert cache.get(rate_budget._key(FP, "distrust"))


def test_someone_else_using_the_key_lowers_our_share():
    learn(limit=20, remaining=5)  # Braze counted 15 in this window; we sent 1
    granted = [budget_acquire(fingerprint=FP, now=T0 + 0.5) for _ in range(10)]
    assert sum(g.slot is not None for g in granted) == 20 - RESERVE - 15


def test_a_probe_that_got_no_answer_lets_the_next_one_probe():
    first = budget_acquire(fingerprint=FP, now=T0).slot
    assert first is not None
    budget_observe(slot=first, limit=None, remaining=None, reset=None, received_at=T0 + 1)
    assert budget_acquire(fingerprint=FP, now=T0 + 1).slot is not None


def test_a_spent_budget_recorded_without_a_slot_makes_everyone_wait():
    rate_budget.budget_record(fingerprint=FP, remaining=0, reset=int(T0) + 30, now=T0)
    assert rate_budget.budget_peek_wait(fingerprint=FP, now=T0) == pytest.approx(29.75)
    assert budget_acquire(fingerprint=FP, now=T0 + 10).slot is None


def test_keys_have_separate_budgets():
    learn(limit=2)
    assert budget_acquire(fingerprint=FP, now=T0 + 1).slot is None
    assert budget_acquire(fingerprint="fp-other-key", now=T0 + 1).slot is not None


@pytest.mark.django_db(transaction=True)
def test_senders_in_parallel_never_get_more_slots_than_the_window_has():
    # given: Braze said 50 per window; 4 senders, each with its own cache client and database
    # connection (as separate processes have), ask for 40 slots each at the same moment
    learn(limit=50)
    granted: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(4)

    def sender() -> None:
        start.wait()
        mine = sum(budget_acquire(fingerprint=FP, now=T0 + 1).slot is not None for _ in range(40))
        with lock:
            granted.append(mine)
        connection.close()

    threads = [threading.Thread(target=sender) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # then: exactly the window's slots were handed out, none twice
    assert len(granted) == 4
    assert sum(granted) == 50 - RESERVE - 1


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_two_senders_against_the_sandbox_get_no_429(sandbox, settings):
    # given: a sandbox allowing 5 requests per half second, and two senders sharing the key
    from integrations.braze.client import BrazeClient
    from tests.conftest import DEMO_KEY

    settings.BRAZE_RATE_WINDOW_SECONDS = 0.5
    sandbox.configure(rate_limit=5, rate_window=0.5)
    body = {"attributes": [{"external_id": "rate-budget-test", "n": 1}]}
    statuses: list[int | None] = []

    def sender() -> None:
        client = BrazeClient()
        sent = 0
        while sent < 12:
            grant = budget_acquire(fingerprint=FP)
            if grant.slot is None:
                threading.Event().wait(grant.wait)
                continue
            result = client.track(endpoint=sandbox.url, api_key=DEMO_KEY, body=body)
            limits = result.rate_limit
            budget_observe(
                slot=grant.slot,
                limit=limits.limit if limits else None,
                remaining=limits.remaining if limits else None,
                reset=limits.reset if limits else None,
                rate_limited=result.status_code == 429,
            )
            statuses.append(result.status_code)
            sent += 1
        client.close()
        connection.close()

    # when
    threads = [threading.Thread(target=sender) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # then: all 24 went through, none was refused
    assert statuses.count(201) == 24


def test_paced_turns_spread_a_window_and_are_never_shared():
    learn(limit=30)  # 29 slots per 3 s (one kept in reserve): a turn every 2.9 s / 29 = 0.1 s

    turns = [rate_budget.budget_pace_turn(fingerprint=FP, now=T0) for _ in range(33)]

    # Three senders at once: one each spacing, never two on one turn.
    assert [t.wait for t in turns[:3]] == pytest.approx([0.0, 0.1, 0.2])
    assert turns[28].wait == pytest.approx(2.8) and turns[28].granted  # the window's last slot
    # None left: wait for the window's end and ask again (a turn of the next window).
    assert [(round(t.wait, 3), t.granted) for t in turns[29:]] == [(3.0, False)] * 4


def test_no_pacing_before_the_limit_is_known():
    assert rate_budget.budget_pace_turn(fingerprint=FP, now=T0) == rate_budget.Turn(0.0)

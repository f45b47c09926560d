"""The intake window (integrations/services/intake_window.py): how a web process coalesces its
intake counts and delivery signals, the bound on what it lets through over a hub's limit, and
the delivery run's linger that makes a skipped signal safe."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from integrations.models import Submission, SubmissionStatus
from integrations.services import delivery, intake, intake_window
from integrations.services.delivery import delivery_run
from integrations.services.intake import submission_receive
from tests.conftest import komo_entry

NOW = 1_800_000_000.0  # 0 s into a minute


@pytest.fixture
def sends(monkeypatch):
    """Every round trip the window makes: (amount sent, flag or None)."""
    made: list[tuple[int, str | None]] = []
    real = intake_window._send

    def spy(hub, key, amount, signal):
        made.append((amount, f"deliver-hub-queued:{hub.pk}" if signal else None))
        return real(hub, key, amount, signal)

    monkeypatch.setattr(intake_window, "_send", spy)
    return made


@pytest.fixture
def enqueued(monkeypatch):
    tasks: list[int] = []
    monkeypatch.setattr(intake_window, "hub_delivery_enqueue", lambda hub_id: tasks.append(hub_id))
    return tasks


@pytest.fixture
def clean_flags():
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.mark.django_db(transaction=True)  # webhooks are committed at once, as in production
def test_a_busy_hub_sends_one_count_and_one_signal_per_interval(
    make_hub, settings, sends, enqueued, clean_flags
):
    # given a hub with a large limit and a 1 s interval
    hub, _ = make_hub()
    settings.WEBHOOK_COALESCE_SECONDS = 1
    settings.WEBHOOK_RATE_PER_MINUTE = 100_000
    # when 50 new rows are settled within the interval
    for _ in range(50):
        intake_window.intake_settle(hub=hub, trigger=True, now=NOW)
    # then the first sent its count and signalled (a task), the next 49 waited locally
    assert sends == [(1, f"deliver-hub-queued:{hub.pk}")]
    assert enqueued == [hub.pk]
    assert intake_window._windows[hub.pk].unsent == 49


@pytest.mark.django_db(transaction=True)
def test_the_count_is_sent_once_one_percent_of_the_limit_waits(
    make_hub, settings, sends, enqueued, clean_flags
):
    hub, _ = make_hub()
    settings.WEBHOOK_COALESCE_SECONDS = 1
    settings.WEBHOOK_RATE_PER_MINUTE = 300  # 1 % = 3
    for _ in range(7):
        intake_window.intake_settle(hub=hub, now=NOW)
    assert [amount for amount, _ in sends] == [1, 3, 3]


@pytest.mark.django_db(transaction=True)
def test_a_hub_with_a_small_limit_is_counted_on_every_webhook(make_hub, settings, sends, enqueued):
    hub, _ = make_hub()
    settings.WEBHOOK_COALESCE_SECONDS = 1
    settings.WEBHOOK_RATE_PER_MINUTE = 50
    for _ in range(4):
        intake_window.intake_settle(hub=hub, now=NOW)
    assert [amount for amount, _ in sends] == [1, 1, 1, 1]


@pytest.mark.django_db(transaction=True)
def test_after_the_interval_the_next_webhook_sends_and_signals_again(
    make_hub, settings, sends, enqueued, clean_flags, monkeypatch
):
    hub, _ = make_hub()
    settings.WEBHOOK_COALESCE_SECONDS = 0.5
    settings.WEBHOOK_RATE_PER_MINUTE = 100_000
    clock = [100.0]
    monkeypatch.setattr(intake_window.time, "monotonic", lambda: clock[0])
    intake_window.intake_settle(hub=hub, trigger=True, now=NOW)
    clock[0] += 0.2
    intake_window.intake_settle(hub=hub, trigger=True, now=NOW)
    clock[0] += 0.4  # 0.6 s after the first signal
    intake_window.intake_settle(hub=hub, trigger=True, now=NOW)
    flag = f"deliver-hub-queued:{hub.pk}"
    assert sends == [(1, flag), (2, flag)]
    assert enqueued == [hub.pk]  # the flag was still set the second time: no second task


@pytest.mark.django_db
def test_inside_a_transaction_every_new_row_signals_on_commit(
    make_hub, settings, sends, django_capture_on_commit_callbacks
):
    hub, _ = make_hub()
    settings.WEBHOOK_COALESCE_SECONDS = 1
    with django_capture_on_commit_callbacks() as callbacks:
        for _ in range(3):
            intake_window.intake_settle(hub=hub, trigger=True, now=NOW)
    assert len(callbacks) == 3
    assert all(flag is None for _, flag in sends)  # nothing signalled before the commit


@pytest.mark.django_db(transaction=True)
def test_the_limit_counts_this_process_unsent_webhooks(make_hub, settings, enqueued):
    hub, _ = make_hub()
    settings.WEBHOOK_COALESCE_SECONDS = 1
    settings.WEBHOOK_RATE_PER_MINUTE = 1000
    admitted = 0
    for _ in range(1100):
        if not intake_window.intake_rate_wait(hub=hub, now=NOW):
            intake_window.intake_settle(hub=hub, now=NOW)
            admitted += 1
    assert admitted == 1000


class _Processes:
    """Several web processes in one: each its own ``_windows``, one shared cache."""

    def __init__(self, count: int) -> None:
        self.windows = [{} for _ in range(count)]

    def webhook(self, process: int, hub, now: float) -> bool:
        saved = intake_window._windows
        intake_window._windows = self.windows[process]
        try:
            if intake_window.intake_rate_wait(hub=hub, now=now):
                return False
            intake_window.intake_settle(hub=hub, now=now)
            return True
        finally:
            intake_window._windows = saved


@pytest.mark.django_db(transaction=True)
@hypothesis_settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    limit=st.integers(min_value=1, max_value=700),
    processes=st.integers(min_value=1, max_value=6),
    order=st.lists(st.integers(min_value=0, max_value=5), min_size=50, max_size=1500),
)
def test_all_processes_together_exceed_the_limit_by_at_most_the_documented_bound(
    make_hub, settings, monkeypatch, limit, processes, order
):
    # given a hub, several web processes and webhooks arriving at them in any order
    from django.core.cache import caches

    caches["throttle"].clear()
    caches["default"].clear()
    hub, _ = make_hub(slug=f"bound-{limit}-{processes}-{len(order)}", active=False)
    settings.WEBHOOK_COALESCE_SECONDS = 1  # and the clock stands still: only the 1 % rule sends
    settings.WEBHOOK_RATE_PER_MINUTE = limit
    monkeypatch.setattr(intake_window.time, "monotonic", lambda: 100.0)
    web = _Processes(processes)
    # when
    admitted = sum(web.webhook(p % processes, hub, NOW) for p in order)
    # then
    assert admitted <= limit + processes * (limit // intake_window.UNSENT_SHARE + 1)
    if len(order) >= limit + processes * (limit // 100 + 1):
        assert admitted >= limit  # and the limit is not undercounted either
    hub.delete()


# --- the delivery run's linger ----------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_run_lingers_and_delivers_a_row_committed_after_its_first_empty_check(
    sandbox_hub, sandbox, settings, monkeypatch
):
    # given a coalescing interval, and a webhook committed while the run waits after finding
    # nothing (its web process skipped the signal: it had set the flag just before)
    settings.WEBHOOK_COALESCE_SECONDS = 0.2
    hub, _ = sandbox_hub
    real_sleep = time.sleep
    late: list[Submission] = []

    def sleep(seconds):
        if not late:
            late.append(submission_receive(hub=hub, payload=komo_entry()).submission)
        real_sleep(seconds)

    monkeypatch.setattr(delivery.time, "sleep", sleep)
    monkeypatch.setattr(intake, "intake_settle", lambda **kwargs: None)  # the skipped signal
    # when
    started = time.monotonic()
    report = delivery_run(hub_id=hub.pk)
    took = time.monotonic() - started
    # then the run waited at least the interval plus the margin, and delivered the late row
    assert took >= 0.2 + delivery.LINGER_MARGIN_SECONDS - 0.01
    assert report.delivered == 1
    late[0].refresh_from_db()
    assert late[0].status == SubmissionStatus.DELIVERED


@pytest.mark.django_db
def test_without_coalescing_an_empty_run_ends_at_once(sandbox_hub, settings):
    settings.WEBHOOK_COALESCE_SECONDS = 0
    hub, _ = sandbox_hub
    started = time.monotonic()
    delivery_run(hub_id=hub.pk)
    assert time.monotonic() - started < 0.2


def test_the_linger_covers_the_interval_and_the_margin(settings):
    settings.WEBHOOK_COALESCE_SECONDS = 0.1
    assert delivery._linger_seconds() == pytest.approx(0.1 + delivery.LINGER_MARGIN_SECONDS)


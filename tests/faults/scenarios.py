"""The faults, one function each. Every function sets up its own hub, injects its fault into real
processes where the fault is about processes (qcluster workers, gunicorn, the database link) and
into the Braze sandbox otherwise, waits (bounded) for the outcome and returns a ``FaultRow``.

``make faults`` runs them with production-size counts against PostgreSQL + Redis;
``tests/test_faults.py`` runs the same functions with small counts on whatever database the suite
uses. Long waits are simulated (``harness.clock_advance``), never slept.
"""

from __future__ import annotations

import copy
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from django.db import close_old_connections, connection
from django.db.models import Count
from django.test.utils import override_settings

from integrations.braze_sandbox import BrazeSandbox
from integrations.models import (
    AttemptItem,
    ConnectionStatus,
    DeliveryAttempt,
    Hub,
    ItemResult,
    Submission,
    SubmissionStatus,
)
from integrations.retry import RETRY_DELAYS_SECONDS
from integrations.selectors import hub_health
from integrations.services.braze_api import braze_client
from integrations.services.delivery import delivery_run, hub_has_due
from integrations.services.hubs import hub_config_export, hub_config_import, hub_token_issue
from integrations.services.intake import submission_receive
from integrations.services.sweep import sweep_due
from tests.conftest import DEFAULT_CONFIG, komo_entry
from tests.faults import harness
from tests.faults.report import FaultRow

KEY = "faults-braze-key-0001"
KEY_NEW = "faults-braze-key-0002"
API_KEYS = (KEY, KEY_NEW)


@dataclass
class Context:
    sandbox: BrazeSandbox
    workdir: Path
    # True under pytest: sweep from the test process every second instead of waiting up to 30 s
    # for the cluster's scheduled sweep loop (make faults relies on the cluster's own schedule).
    sweep: bool = False
    rng: random.Random = field(default_factory=lambda: random.Random(20260314))
    log: Callable[[str], None] = print

    def tick(self) -> None:
        if self.sweep:
            sweep_due()


def sandbox_fresh(sandbox: BrazeSandbox, **config: Any) -> None:
    sandbox.reset(config=True)
    if config:
        sandbox.configure(**config)


def hub_make(ctx: Context, slug: str, *, api_key: str = KEY) -> tuple[Hub, str]:
    config = copy.deepcopy(DEFAULT_CONFIG)
    config.update(slug=slug, name=slug.replace("-", " ").title())
    config["braze"] = {"rest_endpoint": ctx.sandbox.url, "api_key": api_key}
    hub, _ = hub_config_import(config=config)
    hub.intake_rate_per_minute = 1_000_000
    hub.save()
    return hub, hub_token_issue(hub=hub)


def emails_for(prefix: str, count: int) -> list[str]:
    return [f"{prefix}-{index:05d}@example.com" for index in range(count)]


def receive_direct(hub: Hub, emails: Sequence[str]) -> None:
    for email in emails:
        submission_receive(hub=hub, payload=komo_entry(email=email))


def post_many(base_urls: Sequence[str], targets: Sequence[tuple[Hub, str, str]], *,
              concurrency: int = 6, attempts: int = 20) -> Counter[int]:
    """POST one Komo entry per (hub, token, email) over HTTP, spread over ``base_urls``, and
    retry 429/503/connection errors the way a webhook sender does. Answers by status."""
    answers: Counter[int] = Counter()
    lock = threading.Lock()
    local = threading.local()

    def send(index: int) -> None:
        hub, token, email = targets[index]
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        url = f"{base_urls[index % len(base_urls)]}/api/v1/hubs/{hub.slug}/submissions"
        body = json.dumps(komo_entry(id=f"komo-{email}", email=email))
        for attempt in range(attempts):
            try:
                response = session.post(url, data=body, timeout=15, headers={
                    "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
                status = response.status_code
            except requests.RequestException:
                status = 0
            with lock:
                answers[status] += 1
            if status in (200, 202) or (400 <= status < 500 and status != 429):
                return
            time.sleep(min(2.0, 0.05 * 2**attempt))

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(send, range(len(targets))))
    return answers


def delivered_count(hubs: Sequence[Hub]) -> int:
    return Submission.objects.filter(hub__in=hubs, status=SubmissionStatus.DELIVERED).count()


def drain_in_process(hub: Hub, *, seconds: float, every: bool = False) -> float:
    """Run delivery in this process until nothing is pending; when nothing is due, move the
    simulated clock to the next due submission (``every``: until all are due). Returns the
    simulated seconds."""
    simulated = 0.0
    deadline = time.monotonic() + seconds
    pending = Submission.objects.filter(hub=hub, status=SubmissionStatus.PENDING)
    while pending.exists() and time.monotonic() < deadline:
        delivery_run(hub_id=hub.pk, run_seconds=5)
        if pending.exists() and not hub_has_due(hub_id=hub.pk):
            simulated += harness.clock_advance(hub, every=every)
            time.sleep(0.02)
    return simulated


def attempts_by_outcome(hubs: Sequence[Hub]) -> dict[str, int]:
    rows = DeliveryAttempt.objects.filter(hub__in=hubs).values("outcome").annotate(n=Count("id"))
    return {row["outcome"]: row["n"] for row in rows}


def double_deliveries_recorded(hubs: Sequence[Hub]) -> int:
    """Submissions the database records as delivered by more than one request."""
    return (
        AttemptItem.objects.filter(submission__hub__in=hubs, result=ItemResult.DELIVERED)
        .values("submission").annotate(n=Count("id")).filter(n__gt=1).count()
    )


def row_from(name: str, outcome: harness.Outcome, *, injected: int, started: float,
             ok: bool, **notes: Any) -> FaultRow:
    return FaultRow(
        fault=name, injected=injected, sent=outcome.sent, delivered=outcome.delivered,
        lost=outcome.lost, duplicated=outcome.duplicated, failed=outcome.failed,
        notes=notes, ok=ok and outcome.lost == 0, seconds=time.monotonic() - started,
    )


@contextmanager
def processes() -> Iterator[list[harness.Proc]]:
    """Stops every process appended to the list, whatever happens."""
    started: list[harness.Proc] = []
    try:
        yield started
    finally:
        for proc in reversed(started):
            proc.stop()


# --- 1. worker SIGKILL in the middle of a batch ----------------------------------------------


def sigkill_mid_batch(ctx: Context, *, submissions: int, kills: int, workers: int = 3,
                      batch: int = 75, web: bool = False, seconds: float = 180) -> FaultRow:
    """Kill delivery workers with SIGKILL mid-batch, repeatedly, while submissions drain."""
    started = time.monotonic()
    hub, token = hub_make(ctx, "faults-sigkill")
    emails = emails_for("sigkill", submissions)
    sandbox_fresh(ctx.sandbox, latency_ms=60)
    probe = ctx.workdir / "probe-sigkill"
    probe.mkdir(parents=True, exist_ok=True)
    env = harness.process_env(DELIVERY_BATCH_SIZE=str(batch))
    killed: list[int] = []
    with processes() as procs:
        if not web:
            receive_direct(hub, emails)
        procs.append(cluster := harness.qcluster_start(env, workers=workers, probe_dir=probe))
        feeder = None
        if web:
            port = harness.free_port()
            procs.append(harness.gunicorn_start(env, port=port))
            targets = [(hub, token, email) for email in emails]
            feeder = threading.Thread(
                target=post_many, args=([f"http://127.0.0.1:{port}"], targets), daemon=True
            )
            feeder.start()
        deadline = time.monotonic() + seconds
        while len(killed) < kills and time.monotonic() < deadline:
            victim = harness.kill_mid_batch(probe, cluster, ctx.rng)
            if victim is not None:
                killed.append(victim)
                ctx.log(f"  SIGKILL worker {victim} mid-batch ({len(killed)}/{kills})")
                time.sleep(0.4)
            else:
                time.sleep(0.005)
        if feeder is not None:
            feeder.join(timeout=max(1.0, deadline - time.monotonic()))
        drained = harness.wait_until(
            lambda: delivered_count([hub]) >= submissions, max(5.0, deadline - time.monotonic()),
            tick=ctx.tick, every=0.5,
        )
        if not drained:
            ctx.log(cluster.output())
    outcome = harness.outcome(hub, emails, ctx.sandbox.requests())
    bound = len(killed) * batch
    return row_from(
        "worker SIGKILL mid-batch", outcome, injected=len(killed), started=started,
        ok=drained and len(killed) == kills and outcome.duplicated <= bound,
        kills=len(killed), duplicate_bound=bound, batch=batch,
        attempts=attempts_by_outcome([hub]),
    )


# --- 2. a flaky Braze -------------------------------------------------------------------------


class Chaos:
    """Faults on top of the sandbox's steady 5xx rate, one event every ``every`` requests (by
    request count, not by time, so a client that waits does not pile faults up): a burst of
    429s, one answer slower than the client's timeout, or one dropped connection."""

    EVENTS = ("burst429", "slow", "drop")

    def __init__(self, sandbox: BrazeSandbox, *, timeout: float, rng: random.Random,
                 every: int = 8) -> None:
        self.sandbox, self.timeout, self.rng, self.every = sandbox, timeout, rng, every
        self.events: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Chaos:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.sandbox.configure(latency_ms=0, status_next=[], drop_next=0)

    def _count(self) -> int:
        return int(self.sandbox.stats()["requests"])

    def _run(self) -> None:
        last = self._count()
        while not self._stop.wait(0.005):
            if self._count() < last + self.every:
                continue
            event = self.rng.choice(self.EVENTS)
            self.events[event] += 1
            if event == "burst429":
                self.sandbox.configure(status_next=[429, 429])
            elif event == "drop":
                self.sandbox.configure(drop_next=1)
            else:
                self._one_slow_answer()
            last = self._count()

    def _one_slow_answer(self) -> None:
        before = self._count()
        self.sandbox.configure(latency_ms=self.timeout * 1000 + 300)
        deadline = time.monotonic() + 10
        while self._count() == before and time.monotonic() < deadline:
            if self._stop.wait(0.005):
                break
        self.sandbox.configure(latency_ms=0)


def flaky_braze(ctx: Context, *, submissions: int, fail_rate: float = 0.3,
                timeout: float = 0.4, batch: int = 75, chaos_every: int = 8,
                seconds: float = 150) -> FaultRow:
    """30 % of requests answered 500/502/503, plus 429 bursts, slow answers past the client
    timeout and dropped connections: everything is delivered, nothing fails."""
    started = time.monotonic()
    hub, _ = hub_make(ctx, "faults-flaky")
    emails = emails_for("flaky", submissions)
    receive_direct(hub, emails)
    sandbox_fresh(ctx.sandbox, fail_rate=fail_rate)
    with override_settings(BRAZE_TIMEOUT_SECONDS=timeout, DELIVERY_BATCH_SIZE=batch):
        braze_client.cache_clear()
        try:
            with Chaos(ctx.sandbox, timeout=timeout, rng=ctx.rng, every=chaos_every) as chaos:
                simulated = drain_in_process(hub, seconds=seconds, every=True)
        finally:
            braze_client.cache_clear()
    log = ctx.sandbox.requests()
    statuses = harness.requests_by_status(log)
    attempts = attempts_by_outcome([hub])
    injected = sum(statuses[s] for s in ("429", "500", "502", "503", "dropped"))
    injected += attempts.get("timeout", 0)
    outcome = harness.outcome(hub, emails, log)
    return row_from(
        "Braze 30% 5xx + 429 bursts + timeouts + drops", outcome, injected=injected,
        started=started, ok=outcome.failed == 0 and outcome.pending == 0,
        requests=dict(statuses), attempts=attempts, chaos=dict(chaos.events), batch=batch,
        duplicates_are="answers slower than the timeout: Braze applied them, we could not know",
        simulated_minutes=round(simulated / 60, 1),
    )


# --- 3. Braze down for long ---------------------------------------------------------------------


def long_outage(ctx: Context, *, submissions: int, doomed: int, outage_retries: int = 5
                ) -> FaultRow:
    """Braze down for longer than the first retries: submissions wait and go out when it is
    back. Down for the whole retry window: they end ``failed`` and are listed for support."""
    started = time.monotonic()
    hub, _ = hub_make(ctx, "faults-outage")
    survivors, lost_cause = emails_for("outage", submissions), emails_for("doomed", doomed)
    receive_direct(hub, survivors)
    sandbox_fresh(ctx.sandbox, fail_rate=1.0)
    simulated = 0.0
    for _ in range(outage_retries):
        delivery_run(hub_id=hub.pk, run_seconds=10)
        simulated += harness.clock_advance(hub, every=True)
    waited = Submission.objects.filter(hub=hub, status=SubmissionStatus.PENDING,
                                       attempts=outage_retries).count()
    outage_hours = simulated / 3600
    ctx.sandbox.configure(fail_rate=0.0)
    simulated += drain_in_process(hub, seconds=60, every=True)
    recovered = delivered_count([hub])
    # Phase 2: down for the whole retry window.
    receive_direct(hub, lost_cause)
    ctx.sandbox.configure(fail_rate=1.0)
    window = drain_in_process(hub, seconds=120, every=True)
    ctx.sandbox.configure(fail_rate=0.0)
    listed = hub_health(hub=hub).failed
    log = ctx.sandbox.requests()
    outcome = harness.outcome(hub, survivors + lost_cause, log)
    injected = sum(v for k, v in harness.requests_by_status(log).items() if k.startswith("5"))
    return row_from(
        "Braze down (simulated clock)", outcome, injected=injected, started=started,
        ok=waited == submissions and recovered == submissions and listed == doomed
        and outcome.failed == doomed,
        waited_through_hours=round(outage_hours, 2), failed_after_hours=round(window / 3600, 1),
        failed_listed=listed, retries=len(RETRY_DELAYS_SECONDS),
    )


# --- 4. 401 in the middle of a drain ------------------------------------------------------------


def unauthorized_mid_drain(ctx: Context, *, submissions: int, workers: int = 3,
                           batch: int = 75, seconds: float = 120) -> FaultRow:
    """Braze starts answering 401 mid-drain (the key was revoked): the connection pauses at once
    (one 401 per running worker at most), nothing is lost, a new key resumes delivery."""
    started = time.monotonic()
    hub, _ = hub_make(ctx, "faults-401", api_key=KEY)
    emails = emails_for("unauth", submissions)
    sandbox_fresh(ctx.sandbox, latency_ms=40, api_keys=[KEY])
    receive_direct(hub, emails)
    env = harness.process_env(DELIVERY_BATCH_SIZE=str(batch))
    paused_requests = unauthorized = -1
    with processes() as procs:
        procs.append(harness.qcluster_start(env, workers=workers))
        harness.wait_until(lambda: delivered_count([hub]) >= max(1, submissions // 4), seconds / 3,
                           tick=ctx.tick)
        ctx.sandbox.configure(api_keys=[KEY_NEW])  # Braze no longer knows the key
        paused = harness.wait_until(lambda: _connection_status(hub) == ConnectionStatus.PAUSED,
                                    20, tick=ctx.tick)
        time.sleep(0.5)  # let requests already in flight land
        before = len(ctx.sandbox.requests())
        harness.wait_until(lambda: False, 3, tick=ctx.tick, every=0.5)  # sweep runs meanwhile
        log = ctx.sandbox.requests()
        paused_requests = len(log) - before
        unauthorized = sum(1 for entry in log if entry["status"] == 401)
        waiting = Submission.objects.filter(hub=hub, status=SubmissionStatus.PENDING).count()
        config = hub_config_export(hub)
        config["braze"]["api_key"] = KEY_NEW  # a person pastes the new key
        hub_config_import(config=config)
        drained = harness.wait_until(lambda: delivered_count([hub]) >= submissions, seconds,
                                     tick=ctx.tick, every=0.5)
    outcome = harness.outcome(hub, emails, ctx.sandbox.requests())
    return row_from(
        "401 mid-drain", outcome, injected=1, started=started,
        ok=paused and drained and 1 <= unauthorized <= workers and paused_requests == 0
        and outcome.failed == 0,
        answers_401=unauthorized, requests_while_paused=paused_requests,
        waiting_while_paused=waiting,
    )


def _connection_status(hub: Hub) -> str:
    close_old_connections()
    return Hub.objects.select_related("connection").get(pk=hub.pk).connection.status


# --- 5. the database gone during intake -------------------------------------------------------


def database_down_during_intake(ctx: Context, *, submissions: int, seconds: float = 120
                                ) -> FaultRow:
    """Two web requests in three go through a TCP link to PostgreSQL that is cut for the middle
    third: the webhook answers 503 with Retry-After (never 500), nothing half-written remains,
    and after the link is back, intake (the sender's retries) and delivery continue."""
    started = time.monotonic()
    if connection.vendor != "postgresql":
        raise RuntimeError("the database-link fault needs PostgreSQL")
    hub, token = hub_make(ctx, "faults-db-down")
    emails = emails_for("dbdown", submissions)
    sandbox_fresh(ctx.sandbox)
    settings_dict = connection.settings_dict
    proxy = harness.TcpProxy((settings_dict.get("HOST") or "127.0.0.1",
                              int(settings_dict.get("PORT") or 5432)))
    proxy.restore()
    user = settings_dict.get("USER") or "postgres"
    env = harness.process_env(
        DATABASE_URL=f"postgres://{user}@127.0.0.1:{proxy.port}/{settings_dict['NAME']}"
    )
    answers: Counter[int] = Counter()
    missing_retry_after = 0
    with processes() as procs:
        port = harness.free_port()
        procs.append(harness.gunicorn_start(env, port=port))
        url = f"http://127.0.0.1:{port}/api/v1/hubs/{hub.slug}/submissions"
        third = max(1, submissions // 3)
        for index, email in enumerate(emails):
            if index == third:
                proxy.cut()
                ctx.log("  database link cut")
            elif index == 2 * third:
                proxy.restore()
                ctx.log("  database link restored")
            status, retry_after = _post_once(url, token, email)
            answers[status] += 1
            missing_retry_after += status == 503 and not retry_after
        refused = answers[503]
        # The sender retries what was refused (webhooks with 503 + Retry-After are retried).
        retried = post_many([f"http://127.0.0.1:{port}"],
                            [(hub, token, email) for email in emails])
    proxy.cut()
    stored = Submission.objects.filter(hub=hub)
    complete = stored.exclude(payload__isnull=True).exclude(received_at__isnull=True).count()
    drain_in_process(hub, seconds=seconds)
    drained = delivered_count([hub]) >= submissions
    outcome = harness.outcome(hub, emails, ctx.sandbox.requests())
    server_errors = sum(n for status, n in (answers + retried).items()
                        if status >= 500 and status != 503)
    return row_from(
        "database down during intake", outcome, injected=refused, started=started,
        ok=refused > 0 and server_errors == 0 and missing_retry_after == 0 and drained
        and stored.count() == submissions == complete,
        answers=dict(sorted(answers.items())), answers_after_retry=dict(sorted(retried.items())),
        errors_5xx_other_than_503=server_errors, rows_stored=stored.count(),
    )


def _post_once(url: str, token: str, email: str) -> tuple[int, str]:
    body = json.dumps(komo_entry(id=f"komo-{email}", email=email))
    try:
        response = requests.post(url, data=body, timeout=15, headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    except requests.RequestException:
        return 0, ""
    return response.status_code, response.headers.get("Retry-After", "")


# --- 6. two web processes and two worker clusters -------------------------------------------


def _feeder(ctx: Context, procs: list[harness.Proc], env: dict[str, str], *, web: bool
            ) -> Callable[[Sequence[tuple[Hub, str, str]]], None]:
    """How submissions arrive: over HTTP, spread over two gunicorn processes, or (``web``
    False) straight through the intake service."""
    if not web:
        return lambda targets: [receive_direct(hub, [email]) for hub, _token, email in targets]
    ports = [harness.free_port(), harness.free_port()]
    for index, port in enumerate(ports):
        procs.append(harness.gunicorn_start(env, port=port, name=f"web-{index}"))
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    return lambda targets: ctx.log(f"  posted: {dict(post_many(urls, targets))}")


def two_webs_two_clusters(ctx: Context, *, submissions: int, workers: int = 2, batch: int = 10,
                          rate_limit: int = 20, rate_window: float = 1.0, web: bool = True,
                          seconds: float = 150) -> FaultRow:
    """Two gunicorn processes take the webhooks of two hubs that share one Braze key; two
    clusters deliver them. No submission goes out twice (no double claim) and the key's rate
    budget holds across all of them (Braze's window is small here, so it matters)."""
    started = time.monotonic()
    hubs_tokens = [hub_make(ctx, f"faults-shared-{index}") for index in (0, 1)]
    hubs = [hub for hub, _ in hubs_tokens]
    emails = emails_for("shared", submissions)
    sandbox_fresh(ctx.sandbox, rate_limit=rate_limit, rate_window=rate_window, latency_ms=20)
    env = harness.process_env(DELIVERY_BATCH_SIZE=str(batch))
    targets = [(*hubs_tokens[index % 2], email) for index, email in enumerate(emails)]
    backlog, live = targets[: 2 * submissions // 3], targets[2 * submissions // 3:]
    with processes() as procs:
        feed = _feeder(ctx, procs, env, web=web)
        feed(backlog)  # a backlog first, so the clusters meet the rate limit at once
        for index in (0, 1):
            procs.append(harness.qcluster_start(env, workers=workers, name=f"cluster-{index}"))
        feed(live)  # and the rest while they deliver
        drained = harness.wait_until(lambda: delivered_count(hubs) >= submissions, seconds,
                                     tick=ctx.tick, every=0.5)
    log = ctx.sandbox.requests()
    per_hub = [harness.outcome(hub, emails[index::2], log) for index, hub in enumerate(hubs)]
    outcome = harness.Outcome(*(sum(getattr(o, f) for o in per_hub) for f in (
        "sent", "delivered", "lost", "duplicated", "failed", "pending")))
    statuses = harness.requests_by_status(log)
    peak, per_second = harness.accepted_rate(log, rate_window)
    over_budget = statuses["429"]
    doubles = double_deliveries_recorded(hubs)
    return row_from(
        "2 web + 2 clusters, shared key", outcome, injected=0, started=started,
        ok=drained and outcome.duplicated == 0 and doubles == 0 and outcome.failed == 0
        and over_budget <= 2 * workers,
        requests=dict(statuses), answers_429=over_budget,
        braze_limit=f"{rate_limit} per {rate_window:g} s", peak_accepted_in_a_window=peak,
        accepted_per_second=round(per_second, 1), double_claims=doubles,
    )

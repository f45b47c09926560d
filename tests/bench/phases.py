"""The bench's phases (see ``tests.bench.run``); each returns its rows of the table.

Runs in the bench runner's process with Django set up on the bench stack's database.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from django.db import connection

from tests.bench import loadgen, profile, stack
from tests.bench.cpu import CpuMeter, Usage
from tests.bench.loadgen import LoadResult, percentile
from tests.bench.report import Row
from tests.bench.sandbox_log import Sandbox, data_points, first_seen
from tests.bench.views import CEILING_HUB
from tests.bench.workload import (
    API_KEY,
    HUB_CONFIG,
    ceiling_factory,
    entry,
    hub_create,
    new_run_id,
    submissions_queue,
    webhook_factory,
)

SENDERS = 32
BATCH = 75
NO_INTAKE_LIMIT = 100_000_000  # per minute: the bench hubs must not be throttled by intake limits


class Running(Protocol):
    env: dict[str, str]
    web_port: int
    sandbox_url: str
    web: stack.Process | None
    cluster: stack.Process | None

    def start_cluster(self) -> stack.Process: ...


@dataclass
class Context:
    hub_slug: str
    token: str
    hub_id: int = 0
    intake_rate: float = 0.0  # webhooks/s measured in phase 1


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def _hub(slug: str, sandbox_url: str, **fields: Any) -> tuple[Any, str]:
    from integrations.models import Hub

    hub, token = hub_create(slug=slug, sandbox_url=sandbox_url)
    # Diagnosis only: BENCH_NO_RATE_LIMIT=1 (with WEBHOOK_RATE_PER_MINUTE=0) measures the webhook
    # without the per-hub intake limit's counter.
    limit = None if os.environ.get("BENCH_NO_RATE_LIMIT") else NO_INTAKE_LIMIT
    Hub.objects.filter(pk=hub.pk).update(intake_rate_per_minute=limit, **fields)
    hub.refresh_from_db()
    return hub, token


def prepare(sandbox_url: str) -> Context:
    with connection.cursor() as cursor:
        cursor.execute(stack.BENCH_TABLE_SQL)
    hub, token = _hub("bench", sandbox_url)
    _hub(CEILING_HUB, sandbox_url, active=False)
    Sandbox(sandbox_url).configure(log_limit=100_000)
    connection.close()
    return Context(hub_slug=hub.slug, token=token, hub_id=hub.pk)


# --- 1. intake ---------------------------------------------------------------------------------


def _load(
    running: Running, factory: Any, meter: CpuMeter, seconds: float
) -> tuple[LoadResult, Usage]:
    meter.roots["web"] = [running.web.pid] if running.web else []
    with meter.measure() as usage:
        result = loadgen.closed_loop(
            "127.0.0.1", running.web_port, factory, senders=SENDERS, warmup=1.0, seconds=seconds
        )
    return result, usage


def _latency(result: LoadResult) -> tuple[float, float]:
    latencies = [s.latency for s in result.samples if s.status in (200, 202)]
    return percentile(latencies, 0.5), percentile(latencies, 0.99)


def intake(
    running: Running, context: Context, meter: CpuMeter, *, seconds: float, rounds: int = 3
) -> list[Row]:
    """Each endpoint ``rounds`` times, interleaved; the best run of each counts (anything else on
    the machine can only make a run slower, so the best run is the least disturbed one)."""
    endpoints = {
        "bare": lambda run: ceiling_factory("/bench/bare", run=run),
        "insert": lambda run: ceiling_factory("/bench/insert", run=run),
        "insert-small": lambda run: ceiling_factory("/bench/insert-small", run=run),
        "webhook": lambda run: webhook_factory(slug=context.hub_slug, token=context.token, run=run),
    }
    runs: dict[str, list[tuple[LoadResult, Usage]]] = {name: [] for name in endpoints}
    for number in range(rounds):
        print(f"bench: intake round {number + 1}/{rounds} ({SENDERS} senders) …", flush=True)
        for name, factory in endpoints.items():
            # A new run id each time: every Komo id is new (a repeat would be a 200).
            runs[name].append(_load(running, factory(new_run_id()), meter, seconds))
    best = {name: max(results, key=lambda r: r[0].rate(202)) for name, results in runs.items()}
    bare, insert, small, webhook = (best[n][0] for n in endpoints)
    rate = webhook.rate(202)
    context.intake_rate = rate
    p50, p99 = _latency(webhook)
    ceiling = insert.rate(202)
    errors = len(webhook.samples) - len(webhook.ok(202))
    spread = ", ".join(f"{r.rate(202):,.0f}" for r, _ in runs["webhook"])
    if os.environ.get("BENCH_DEBUG"):
        for name, results in runs.items():
            print(f"  {name}: statuses per run", [_statuses(r) for r, _ in results])
    rows = [
        _intake_row("intake ceiling: bare endpoint (202 only)", bare),
        _intake_row("intake ceiling: one INSERT into the submissions table", insert),
        _intake_row("intake ceiling: one INSERT into a one-index table", small),
        Row(
            "intake: webhook, 32 senders (PostgreSQL)",
            f"{rate:,.0f}/s, p50 {_ms(p50)}, p99 {_ms(p99)} (runs: {spread}/s)"
            + (f", {errors} not 202" if errors else ""),
            "≥ 1,000/s, p99 < 50 ms",
            rate >= 1000 and p99 < 0.050 and not errors,
        ),
        Row(
            "intake: webhook ÷ INSERT ceiling (submissions table)",
            f"{rate / ceiling:.0%}" if ceiling else "-",
            "≥ 80 %",
            bool(ceiling) and rate / ceiling >= 0.8,
        ),
        Row("intake: webhook ÷ INSERT into a one-index table", f"{rate / small.rate(202):.0%}"),
        Row("intake: webhook ÷ bare endpoint", f"{rate / bare.rate(202):.0%}"),
    ]
    rows += _cpu_rows(best)
    return rows


def _statuses(result: LoadResult) -> dict[int, int]:
    counts: dict[int, int] = {}
    for sample in result.samples:
        counts[sample.status] = counts.get(sample.status, 0) + 1
    return counts


def _intake_row(label: str, result: LoadResult) -> Row:
    p50, p99 = _latency(result)
    return Row(label, f"{result.rate(202):,.0f}/s, p50 {_ms(p50)}, p99 {_ms(p99)}")


def _cpu_rows(results: dict[str, tuple[LoadResult, Usage]]) -> list[Row]:
    rows = []
    for name, (result, usage) in results.items():
        done = len(result.ok(202)) * (usage.seconds / result.seconds if result.seconds else 1)
        per = usage.per(int(done))
        parts = ", ".join(
            f"{role} {per[role]:.2f}"
            for role in ("web", "postgres", "redis", "client", "other")
            if per.get(role, 0) >= 0.005
        )
        rows.append(Row(f"intake CPU per request, ms ({name})", parts))
    bare = results["bare"][0]
    rows.append(
        Row(
            "load client",
            f"{bare.client_cores():.2f} cores at {bare.rate(202):,.0f}/s (bare); "
            f"{results['webhook'][0].client_cores():.2f} cores for the webhook",
        )
    )
    return rows


def intake_profile(running: Running, context: Context, seconds: float = 6.0) -> list[Row]:
    """py-spy on the web workers during a separate (unmeasured) webhook run: Python CPU only."""
    if running.web is None:
        return []
    print("bench: profiling the webhook with py-spy …", flush=True)
    raw = Path(tempfile.gettempdir()) / f"bench-profile-{new_run_id()}.txt"
    spy = profile.record(running.web.pid, seconds, raw)
    if spy is None:
        return [Row("profile (py-spy)", "py-spy not installed")]
    factory = webhook_factory(slug=context.hub_slug, token=context.token, run=new_run_id())
    loadgen.closed_loop("127.0.0.1", running.web_port, factory, senders=SENDERS, warmup=0.5,
                        seconds=seconds + 0.5)  # fmt: skip
    try:
        spy.wait(timeout=seconds + 30)
    except Exception:  # a profiler that hangs must not hang the bench
        spy.kill()
    ours, packages = profile.summarise(raw, top=8)
    raw.unlink(missing_ok=True)
    rows = [
        Row(f"profile: webhook, Python CPU below our code #{i}", f"{share:4.1f} % {frame[:80]}")
        for i, (share, frame) in enumerate(ours, start=1)
    ]
    rows.append(
        Row(
            "profile: webhook, Python CPU by package",
            ", ".join(f"{name} {share:.0f} %" for share, name in packages),
        )
    )
    return rows


# --- 2. drain ----------------------------------------------------------------------------------


def _cluster_ready(seconds: float = 60.0) -> None:
    """A task through the broker and back: the cluster is up and taking work."""
    from django_q.tasks import async_task, result

    task_id = async_task("integrations.tasks.sweep")
    deadline = time.monotonic() + seconds
    while result(task_id) is None:
        if time.monotonic() > deadline:
            raise TimeoutError("the django-q2 cluster did not start")
        time.sleep(0.2)


def _set_pending(hub: Any, count: int) -> None:
    """Exactly ``count`` pending submissions on the hub: intake's, topped up or cut down."""
    from integrations.models import Submission, SubmissionStatus

    pending = Submission.objects.filter(hub=hub, status=SubmissionStatus.PENDING)
    have = pending.count()
    if have < count:
        submissions_queue(hub, count - have, run=new_run_id())
    elif have > count:
        extra = pending.order_by("-id").values_list("id", flat=True)[: have - count]
        Submission.objects.filter(id__in=list(extra)).update(status=SubmissionStatus.IGNORED)


def _wait_drained(hub_id: int, seconds: float) -> float:
    from integrations.models import Submission, SubmissionStatus

    started = time.monotonic()
    deadline = started + seconds
    while Submission.objects.filter(hub_id=hub_id, status=SubmissionStatus.PENDING).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"backlog not drained in {seconds:.0f} s")
        time.sleep(0.05)
    return time.monotonic() - started


def drain(running: Running, context: Context, meter: CpuMeter, *, count: int) -> list[Row]:
    from integrations.models import Hub
    from integrations.services.dispatch import hub_delivery_flag_clear, hub_delivery_trigger

    hub = Hub.objects.get(pk=context.hub_id)
    Hub.objects.filter(pk=hub.pk).update(active=False)
    _set_pending(hub, count)
    print(f"bench: drain {count:,} queued submissions …", flush=True)
    cluster = running.start_cluster()
    meter.roots["cluster"] = [cluster.pid]
    _cluster_ready()
    sandbox = Sandbox(running.sandbox_url)
    sandbox.reset()
    Hub.objects.filter(pk=hub.pk).update(active=True)
    hub_delivery_flag_clear(hub_id=hub.pk)
    with meter.measure() as usage:
        hub_delivery_trigger(hub_id=hub.pk, force=True)
        elapsed = _wait_drained(hub.pk, seconds=300)
    requests = [r for r in sandbox.track_requests() if r.status == 201]
    rate = count / elapsed
    objects = sum(r.objects for r in requests) / len(requests) if requests else 0.0
    cores = usage.cores()
    return [
        Row(
            f"drain: {count:,} queued → sandbox",
            f"{rate:,.0f}/s ({elapsed:.1f} s), {len(requests) / count:.4f} requests/submission, "
            f"{objects:.1f} objects/request",
            "faster than intake; ≥ 70 objects/request",
            rate > context.intake_rate and objects >= 70,
        ),
        Row(
            "drain: cores busy",
            ", ".join(
                f"{role} {value:.2f}" for role, value in sorted(cores.items()) if value >= 0.01
            ),
        ),
    ]


# --- 3. end to end -----------------------------------------------------------------------------


def end_to_end(
    running: Running,
    context: Context,
    *,
    rate: float,
    label: str,
    embedded: bool = False,
    count: int = 200,
    warmup: int = 20,
) -> list[Row]:
    sandbox = Sandbox(running.sandbox_url)
    if running.cluster is None:
        running.start_cluster()
    factory = webhook_factory(
        slug=context.hub_slug, token=context.token, run=new_run_id(), people=None
    )
    _warm_up(running, factory, sandbox, warmup)
    sandbox.reset()
    print(f"bench: end to end at {rate:.0f}/s on {label} …", flush=True)
    offset = warmup + 1
    result = loadgen.open_loop(
        "127.0.0.1", running.web_port, lambda n: factory(n + offset), rate=rate, count=count
    )
    accepted = {s.tag: s.done_at for s in result.samples if s.status == 202}
    seen = _wait_seen(sandbox, set(accepted), seconds=60)
    latencies = [seen[email] - done for email, done in accepted.items() if email in seen]
    missing = count - len(latencies)
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    return [
        Row(
            f"end to end at {rate:.0f}/s: 202 → sandbox 201 ({label})",
            f"p50 {_ms(p50)}, p99 {_ms(p99)} (n={len(latencies)}"
            + (f", {missing} missing)" if missing else ")"),
            "p50 < 300 ms, p99 < 1 s" if not embedded else "",
            (p50 < 0.3 and p99 < 1.0 and not missing) if not embedded else None,
        )
    ]


def _warm_up(running: Running, factory: Any, sandbox: Sandbox, count: int) -> None:
    """Send a few submissions and wait until they arrive (the cluster is up and warm)."""
    result = loadgen.open_loop("127.0.0.1", running.web_port, factory, rate=20, count=count)
    tags = {s.tag for s in result.samples if s.status == 202}
    _wait_seen(sandbox, tags, seconds=90)


def _wait_seen(sandbox: Sandbox, people: set[str], *, seconds: float) -> dict[str, float]:
    deadline = time.monotonic() + seconds
    while True:
        seen = first_seen(sandbox.track_requests())
        if people <= set(seen) or time.monotonic() > deadline:
            return seen
        time.sleep(0.5)


def embedded_hub(env: dict[str, str], sandbox_url: str) -> str:
    """Create the embedded run's hub with the management commands; its ingest token."""
    config = {
        **HUB_CONFIG,
        "slug": "bench-embedded",
        "braze": {"rest_endpoint": sandbox_url, "api_key": API_KEY},
    }
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as file:
        json.dump(config, file)
    try:
        stack.manage(env, "hub_import", file.name)
    finally:
        Path(file.name).unlink(missing_ok=True)
    return stack.manage(env, "hub_token", "bench-embedded").strip().splitlines()[-1].strip()


# --- 4. skip_unchanged -------------------------------------------------------------------------


def skip_unchanged(running: Running, context: Context, *, people: int = 200) -> list[Row]:
    """The same workload with repeats through a hub with skip_unchanged and one without."""
    from integrations.models import Submission, SubmissionStatus
    from integrations.services.delivery import delivery_run

    print("bench: skip_unchanged on a workload with repeats …", flush=True)
    sandbox = Sandbox(running.sandbox_url)
    sandbox.reset()
    hubs = {
        "skip": _hub("bench-skip", running.sandbox_url, skip_unchanged=True)[0],
        "all": _hub("bench-all", running.sandbox_url)[0],
    }
    # Round 1: new people; round 2: the same values again; round 3: two values changed.
    rounds: list[dict[str, Any]] = [{}, {}, {"postcode": "6000", "score": "9"}]
    for number, changes in enumerate(rounds):
        for name, hub in hubs.items():
            run = f"{name}{number}-{new_run_id()}"
            rows = [
                entry(i, run=run, email=f"repeat.{name}.{i}@example.com", **changes)
                for i in range(people)
            ]
            _store(hub, rows)
            for _ in range(50):  # bounded: each run delivers up to everything due
                delivery_run(hub_id=hub.pk, run_seconds=10)
                if not Submission.objects.filter(hub=hub, status=SubmissionStatus.PENDING).exists():
                    break
    requests = sandbox.track_requests()
    sent = {
        name: data_points(
            r for r in requests if r.attributes and f"repeat.{name}." in json.dumps(r.attributes[0])
        )
        for name in hubs
    }
    saved = 1 - sent["skip"] / sent["all"] if sent["all"] else 0.0
    return [
        Row(
            "skip_unchanged: attribute data points saved",
            f"{saved:.0%} ({sent['skip']:,} sent instead of {sent['all']:,}; {people} people × "
            "3 rounds: new, same again, 2 values changed)",
        )
    ]


def _store(hub: Any, payloads: list[dict[str, Any]]) -> None:
    from integrations.services.intake import submission_receive

    for payload in payloads:
        submission_receive(hub=hub, payload=payload)


# --- 5. the rate limit -------------------------------------------------------------------------


def rate_limit(
    running: Running, context: Context, *, limit: int, window: float, seconds: float = 12.0
) -> list[Row]:
    from integrations.models import Hub
    from integrations.services.dispatch import hub_delivery_trigger

    windows = seconds / window
    if running.cluster is None:
        running.start_cluster()
        _cluster_ready()
    hub, _ = _hub("bench-rate", running.sandbox_url, active=False)
    submissions_queue(hub, int(limit * (windows + 2) * BATCH), run=new_run_id())
    sandbox = Sandbox(running.sandbox_url)
    sandbox.configure(rate_limit=limit, rate_window=window)
    sandbox.reset()
    print(
        f"bench: at the rate limit ({limit} per {window:.0f} s) for {seconds:.0f} s …", flush=True
    )
    Hub.objects.filter(pk=hub.pk).update(active=True)
    hub_delivery_trigger(hub_id=hub.pk, force=True)
    started = _first_request(sandbox, seconds=30)
    time.sleep(max(0.0, started + seconds + 1.0 - time.time()))
    Hub.objects.filter(pk=hub.pk).update(active=False)
    inside = [r for r in sandbox.track_requests() if started <= r.at < started + seconds]
    accepted = sum(r.status == 201 for r in inside)
    refused = sum(r.status == 429 for r in inside)
    if os.environ.get("BENCH_DEBUG"):
        print("  requests (s after the first, status):")
        print("  " + " ".join(f"{r.at - started:.3f}:{r.status}" for r in inside))
    time.sleep(window)  # let the last window pass before the sandbox gets its usual limit back
    sandbox.configure(rate_limit=3000, rate_window=3.0)
    used = accepted / (limit * windows)
    share_429 = refused / len(inside) if inside else 0.0
    return [
        Row(
            f"at the rate limit ({limit} requests / {window:.0f} s, {seconds:.0f} s)",
            f"{used:.0%} of the limit used, {refused} × 429 of {len(inside)} requests "
            f"({share_429:.1%})",
            "≥ 90 % used, < 1 % 429",
            used >= 0.9 and share_429 < 0.01,
        )
    ]


def _first_request(sandbox: Sandbox, *, seconds: float) -> float:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        requests = sandbox.track_requests()
        if requests:
            return min(r.at for r in requests)
        time.sleep(0.05)
    raise TimeoutError("no request reached the sandbox")


# --- 6. memory, machine ------------------------------------------------------------------------


def memory(running: Running) -> list[Row]:
    rows = []
    if running.web is not None:
        workers = stack.descendants(running.web.pid)
        peaks = [stack.peak_rss_mb(pid) for pid in workers]
        peak = max(peaks, default=0.0)
        rows.append(
            Row(
                "peak memory: web worker (VmHWM)",
                f"{peak:.0f} MB (largest of {len(workers)} gunicorn workers)",
                "< 150 MB",
                0 < peak < 150,
            )
        )
    if running.cluster is not None:
        pids = [running.cluster.pid, *stack.descendants(running.cluster.pid)]
        peaks = [stack.peak_rss_mb(pid) for pid in pids]
        rows.append(
            Row(
                "peak memory: worker cluster (VmHWM)",
                f"{sum(peaks):.0f} MB in {len(pids)} processes (largest {max(peaks):.0f} MB)",
            )
        )
    return rows


def machine(meter: CpuMeter) -> list[Row]:
    total = meter.total
    other = total.by_role.get("other", 0.0) / total.seconds if total.seconds else 0.0
    return [
        Row(
            "other load on the machine while measuring",
            f"{other:.2f} cores (anything not part of the bench's stack)",
        )
    ]

"""The bench's backfill phases (``--only backfill-import,backfill-live``; see ``tests.bench.run``).

* ``backfill_import``: ``manage.py hub_backfill`` reads a 1,000,000-row CSV in Komo's export
  format (all of a competition entry's columns, ~300 MB) into an inactive hub: rows queued per
  second (from the backfill's own start and end) and the command's peak memory (VmHWM, read
  from /proc while it runs).
* ``backfill_live``: a backlog of backfilled rows drains through the worker cluster against a
  sandbox limit of 30 requests per 3 s while live webhooks arrive at 20/s: their end-to-end
  p99 (202 → sandbox 201) and the share of what the limit leaves after live traffic that the
  backfill used (capacity = the limit × 75 submissions per request).
"""

from __future__ import annotations

import csv
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.bench import loadgen, stack
from tests.bench.cpu import _machine_busy, _process_cpu
from tests.bench.loadgen import percentile
from tests.bench.report import Row
from tests.bench.sandbox_log import Sandbox, person_of
from tests.bench.workload import new_run_id, sample_payload, webhook_factory

BATCH = 75
BACKFILL_PEOPLE = 500  # the sandbox scans its profiles per object: keep its population small
EXPORT_COLUMNS = (
    "id", "timestamp", "site_id", "site_name", "user_session_id", "card_id", "card_name",
    "card_type", "score", "correct", "competition_entry_id", "submission_id", "email",
    "first_name", "last_name", "mobile", "birthday", "postcode", "optin",
)  # fmt: skip


def export_write(path: Path, count: int, *, run: str, people: int) -> float:
    """A Komo-style entries export of ``count`` rows (people interleaved, in time order);
    its size in MB."""
    sample = sample_payload()
    chooser = random.Random(7)
    start = datetime(2025, 3, 1, tzinfo=UTC)
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(EXPORT_COLUMNS)
        for number in range(count):
            person = chooser.randrange(people)
            moment = start + timedelta(seconds=number * 7)
            row = dict(sample)
            row.update(
                id=f"{run}-{number:09d}", timestamp=moment.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                email=f"backfill.person{person}@example.com", first_name=f"First{person}",
                last_name=f"Last{person}", mobile=f"04{person % 100_000_000:08d}",
                user_session_id=f"{run}-s{number}", competition_entry_id=f"{run}-c{number}",
                submission_id=f"{run}-u{number}", score=str(number % 10),
            )  # fmt: skip
            writer.writerow([row[column] for column in EXPORT_COLUMNS])
    return path.stat().st_size / 1024**2


def _hub(slug: str, sandbox_url: str, *, active: bool) -> Any:
    from integrations.models import Hub
    from tests.bench.phases import _hub as bench_hub

    hub, _token = bench_hub(slug, sandbox_url, active=active)
    return Hub.objects.get(pk=hub.pk), _token


# --- 1,000,000 rows queued --------------------------------------------------------------------


def backfill_import(running: Any, *, count: int = 0) -> list[Row]:
    from integrations.models import Backfill

    count = count or int(os.environ.get("BENCH_BACKFILL_ROWS", "1000000"))
    hub, _token = _hub("bench-backfill", running.sandbox_url, active=False)
    with tempfile.TemporaryDirectory(prefix="bench-backfill-") as directory:
        path = Path(directory) / "entries.csv"
        print(f"bench: writing a {count:,}-row export …", flush=True)
        size_mb = export_write(path, count, run=new_run_id(), people=count // 10)
        print(f"bench: hub_backfill {count:,} rows ({size_mb:.0f} MB) …", flush=True)
        command = [sys.executable, "manage.py", "hub_backfill", hub.slug, str(path)]
        # CPU by process, polled while the command runs: its database connection's backend ends
        # with it, and a meter reading only at the end would count both as "other".
        before, busy_before, started = _process_cpu(), _machine_busy(), time.monotonic()
        process = stack.Process("hub_backfill", command, running.env)
        seen: dict[int, tuple[str, float]] = {}
        peak = 0.0
        deadline = time.monotonic() + 1800
        while process.alive() and time.monotonic() < deadline:
            peak = max(peak, stack.peak_rss_mb(process.pid))
            seen.update(_process_cpu())
            time.sleep(0.5)
        code = process.popen.wait(timeout=60)
        seconds, busy = time.monotonic() - started, _machine_busy() - busy_before
        output = process.output(2000)
        process.stop()
    if code:
        raise RuntimeError(f"hub_backfill failed:\n{output}")
    backfill = Backfill.objects.filter(hub=hub).latest("id")
    seconds = (backfill.imported_at - backfill.started_at).total_seconds()
    rate = backfill.rows_queued / seconds if seconds else 0.0
    cores = {"importer": 0.0, "postgres": 0.0}
    for pid, (name, cpu) in seen.items():
        role = "importer" if pid == process.pid else "postgres" if name == "postgres" else ""
        if role:
            cores[role] += cpu - before.get(pid, (name, 0.0))[1]
    cores["anything else"] = max(0.0, busy - cores["importer"] - cores["postgres"])
    shares = ", ".join(f"{role} {cpu / seconds:.2f}" for role, cpu in cores.items())
    return [
        Row(
            f"backfill: {count:,}-row CSV ({size_mb:.0f} MB) → queued (hub_backfill)",
            f"{rate:,.0f} rows/s ({backfill.rows_queued:,} in {seconds:.1f} s), "
            f"peak memory {peak:.0f} MB",
            "≥ 10,000/s, < 200 MB",
            rate >= 10_000 and 0 < peak < 200 and backfill.rows_queued == count,
        ),
        Row("backfill: cores busy while importing", shares),
    ]


# --- live traffic while a backfill drains at the rate limit ------------------------------------


def backfill_live(
    running: Any, *, limit: int = 30, window: float = 3.0, rate: float = 20.0,
    count: int = 400, backlog: int = 40_000,
) -> list[Row]:  # fmt: skip
    from integrations.models import Hub
    from integrations.services import backfill as service
    from integrations.services.dispatch import hub_delivery_trigger
    from tests.bench.phases import _cluster_ready, _wait_seen

    if running.cluster is None:
        running.start_cluster()
        _cluster_ready()
    hub, token = _hub("bench-backfill-live", running.sandbox_url, active=False)
    with tempfile.TemporaryDirectory(prefix="bench-backfill-") as directory:
        path = Path(directory) / "entries.csv"
        export_write(path, backlog, run=new_run_id(), people=BACKFILL_PEOPLE)
        backfill = service.backfill_from_path(hub=hub, path=path)
        service.backfill_start(backfill, enqueue=False)
        service.backfill_import(backfill_id=backfill.pk, run_seconds=None)
    sandbox = Sandbox(running.sandbox_url)
    sandbox.configure(rate_limit=limit, rate_window=window)
    sandbox.reset()
    print(f"bench: live webhooks at {rate:.0f}/s while a backfill drains at {limit} requests per "
          f"{window:.0f} s …", flush=True)  # fmt: skip
    Hub.objects.filter(pk=hub.pk).update(active=True)
    hub_delivery_trigger(hub_id=hub.pk, force=True)
    time.sleep(2 * window)  # the backlog is draining at full speed
    factory = webhook_factory(slug=hub.slug, token=token, run=new_run_id(), people=None)
    started = time.time()
    result = loadgen.open_loop("127.0.0.1", running.web_port, factory, rate=rate, count=count)
    ended = time.time()
    accepted = {s.tag: s.done_at for s in result.samples if s.status == 202}
    seen = _wait_seen(sandbox, set(accepted), seconds=60)
    Hub.objects.filter(pk=hub.pk).update(active=False)
    requests = sandbox.track_requests()
    time.sleep(window)
    sandbox.configure(rate_limit=3000, rate_window=3.0)
    latencies = [seen[tag] - done for tag, done in accepted.items() if tag in seen]
    missing = len(accepted) - len(latencies)
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    inside = [r for r in requests if started <= r.at < ended and r.status == 201]
    backfilled = sum(
        1 for r in inside for obj in r.attributes if person_of(obj).startswith("backfill.")
    )
    live = sum(1 for r in inside for obj in r.attributes if person_of(obj).startswith("bench."))
    seconds = ended - started
    refused = sum(1 for r in requests if started <= r.at < ended and r.status == 429)
    capacity = limit / window * BATCH  # submissions per second the key allows
    leaves = capacity - live / seconds
    share = (backfilled / seconds) / leaves if leaves > 0 else 0.0
    return [
        Row(
            f"backfill + live at {rate:.0f}/s, {limit} requests / {window:.0f} s: live 202 → 201",
            f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms (n={len(latencies)}"
            + (f", {missing} missing)" if missing else ")"),
            "p99 ≤ 1 s",
            p99 <= 1.0 and not missing,
        ),
        Row(
            "backfill + live: share of the budget live traffic leaves, used by the backfill",
            f"{share:.0%} ({backfilled / seconds:,.0f} of {leaves:,.0f} submissions/s; "
            f"{refused} × 429)",
            "≥ 85 %",
            share >= 0.85,
        ),
    ]

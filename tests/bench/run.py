"""``make bench``: the production stack on this machine, measured, in one table.

    python -m tests.bench.run [--no-profile] [--drain 20000] [--seconds 8]

Stack: gunicorn (``portal/gunicorn.conf.py``) + PostgreSQL + Redis (broker and cache) + the
django-q2 cluster + the Braze sandbox, all with production settings (``DEBUG`` off) plus the
bench-only ceiling endpoints (``portal.settings_bench``). Phases, each measured in this run:

1. intake at 32 concurrent senders: ``/bench/bare``, ``/bench/insert`` and the real webhook
   (workers stopped, so only the web tier is measured), with CPU per request by process; then,
   in the runner's own process, what DRF and the metrics cost per webhook
   (``tests/bench/inprocess.py``);
2. drain: 20,000 queued submissions to the sandbox (submissions/s, requests and objects);
3. end to end at a steady 20 submissions/s: webhook 202 → sandbox 201;
4. skip_unchanged on a workload with repeats: Braze data points saved;
5. at the rate limit: the sandbox set to 30 requests per 3 s, a backlog, share used and 429s;
6. backfill: a 1,000,000-row CSV queued by ``hub_backfill`` (rows/s, peak memory), and live
   webhooks at 20/s while a backfill drains at 30 requests per 3 s (``backfill_phases``);
7. peak memory (VmHWM) of the web workers and the worker cluster;
8. the end-to-end figure again on the embedded default (SQLite + ORM broker).

``--only intake,drain,…`` runs some phases alone (names: intake, inprocess, profile, drain, e2e,
skip, ratelimit, backfill-import, backfill-live); ``BENCH_DB`` and ``BENCH_REDIS_URL`` choose the
database and Redis db.

Every loop is bounded in count and time; every process started here is stopped on exit.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.bench import stack
from tests.bench.cpu import CpuMeter
from tests.bench.report import Row, print_table

WEB_WORKERS = os.environ.get("BENCH_WEB_WORKERS", "")  # empty: portal/gunicorn.conf.py decides
Q_WORKERS = os.environ.get("BENCH_Q_WORKERS", "4")
SENDERS = 32
E2E_RATE = 20.0
RATE_LIMIT, RATE_WINDOW = 30, 3.0


@dataclass
class Stack:
    env: dict[str, str]
    web_port: int
    sandbox_url: str
    processes: list[stack.Process] = field(default_factory=list)
    web: stack.Process | None = None
    cluster: stack.Process | None = None

    def start_web(self) -> stack.Process:
        env = {**self.env, "GUNICORN_BIND": f"127.0.0.1:{self.web_port}"}
        if WEB_WORKERS:
            env["WEB_CONCURRENCY"] = WEB_WORKERS
        command = [str(stack.VENV_BIN / "gunicorn"), "-c", "portal/gunicorn.conf.py", "portal.wsgi"]
        self.web = self._start("gunicorn", command, env)
        stack.wait_http(f"http://127.0.0.1:{self.web_port}/healthz", process=self.web)
        return self.web

    def start_cluster(self) -> stack.Process:
        env = {**self.env, "Q_WORKERS": Q_WORKERS}
        self.cluster = self._start("qcluster", [sys.executable, "manage.py", "qcluster"], env)
        return self.cluster

    def _start(self, name: str, command: list[str], env: dict[str, str]) -> stack.Process:
        process = stack.Process(name, command, env)
        self.processes.append(process)
        return process

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()


def _sandbox(env: dict[str, str], port: int) -> stack.Process:
    from tests.bench.workload import API_KEY

    command = [
        sys.executable, "manage.py", "braze_sandbox", "--port", str(port), "--api-key", API_KEY,
    ]  # fmt: skip
    process = stack.Process("sandbox", command, env)
    stack.wait_http(f"http://127.0.0.1:{port}/_sandbox/api/stats", process=process)
    return process


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds", type=float, default=4.0, help="measured seconds per intake run"
    )
    parser.add_argument("--rounds", type=int, default=3, help="intake runs per endpoint")
    parser.add_argument("--drain", type=int, default=20_000, help="queued submissions to drain")
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy profile")
    parser.add_argument("--no-embedded", action="store_true", help="skip the SQLite e2e figure")
    parser.add_argument("--only", default="", help="comma-separated phases (development)")
    args = parser.parse_args(argv)

    sandbox_port, web_port = stack.free_port(), stack.free_port()
    database_url = stack.postgres_recreate()
    stack.redis_flush()
    env = stack.stack_env(
        database_url=database_url, redis_url=stack.BENCH_REDIS_URL, sandbox_port=sandbox_port
    )
    os.environ.update(env)
    print(f"bench: migrating {stack.BENCH_DB} …", flush=True)
    stack.manage(env, "migrate", "--noinput")

    import django

    django.setup()
    from tests.bench import backfill_phases, phases

    rows: list[Row] = []
    sandbox_process = _sandbox(env, sandbox_port)
    running = Stack(env, web_port, f"http://127.0.0.1:{sandbox_port}", [sandbox_process])
    meter = CpuMeter()
    meter.roots["sandbox"] = [sandbox_process.pid]
    try:
        context = phases.prepare(running.sandbox_url)
        running.start_web()
        wanted = set(args.only.split(",")) if args.only else None

        def want(name: str) -> bool:
            return wanted is None or name in wanted

        if want("intake"):
            rows += phases.intake(running, context, meter, seconds=args.seconds, rounds=args.rounds)
        if want("inprocess"):
            from tests.bench.inprocess import drf_and_metrics_cost

            rows += drf_and_metrics_cost(hub_slug=context.hub_slug, token=context.token)
        if want("profile") and not args.no_profile:
            rows += phases.intake_profile(running, context)
        if want("drain"):
            rows += phases.drain(running, context, meter, count=args.drain)
        if want("e2e"):
            rows += phases.end_to_end(running, context, rate=E2E_RATE, label="PostgreSQL + Redis")
        if want("skip"):
            rows += phases.skip_unchanged(running, context)
        if want("ratelimit"):
            rows += phases.rate_limit(running, context, limit=RATE_LIMIT, window=RATE_WINDOW)
        if want("backfill-import"):
            rows += backfill_phases.backfill_import(running)
        if want("backfill-live"):
            rows += backfill_phases.backfill_live(
                running, limit=RATE_LIMIT, window=RATE_WINDOW, rate=E2E_RATE
            )
        rows += phases.memory(running)
    finally:
        running.stop()
    if not args.no_embedded and not args.only:
        rows += embedded_end_to_end(sandbox_port)
    rows += phases.machine(meter)
    print_table(rows)
    return 0


def embedded_end_to_end(sandbox_port: int) -> list[Row]:
    """The e2e figure on the embedded default: SQLite + django-q2's ORM broker, no Redis."""
    from tests.bench import phases

    with tempfile.TemporaryDirectory(prefix="portal-bench-") as directory:
        database = Path(directory) / "bench.sqlite3"
        env = stack.stack_env(
            database_url=f"sqlite:///{database}",
            redis_url="",
            sandbox_port=sandbox_port,
            PORTAL_VAR_DIR=directory,
        )
        print("bench: embedded default (SQLite + ORM broker) …", flush=True)
        stack.manage(env, "migrate", "--noinput")
        sandbox_process = _sandbox(env, sandbox_port)
        running = Stack(env, stack.free_port(), f"http://127.0.0.1:{sandbox_port}")
        running.processes.append(sandbox_process)
        try:
            token = phases.embedded_hub(env, running.sandbox_url)
            running.start_web()
            return phases.end_to_end(
                running,
                phases.Context(hub_slug="bench-embedded", token=token),
                rate=E2E_RATE,
                label="SQLite + ORM broker",
                embedded=True,
            )
        finally:
            running.stop()


if __name__ == "__main__":
    started = time.monotonic()
    try:
        code = main()
    finally:
        print(f"bench: finished in {time.monotonic() - started:.0f} s", flush=True)
    sys.exit(code)

"""``make faults``: inject every fault against PostgreSQL + Redis with real processes, then fuzz
the webhook, run schemathesis and the secrets scan, and print one table.

    python -m tests.faults.run [--quick] [--only NAME ...] [--fuzz-examples N]

Needs PostgreSQL (``FAULTS_PG``, default ``postgres://postgres@127.0.0.1:5432``, trust auth) and
Redis (``FAULTS_REDIS``, default ``redis://127.0.0.1:6379/13``; that database is flushed). It
creates and drops its own database ``komo_faults``. Everything listens on loopback; every wait is
bounded. Exit status 0 only when nothing was lost, no fuzz case got a 5xx, no secret leaked and
every fault behaved as promised. The table is also written to ``test-artifacts/faults.md``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parents[2]
DATABASE = "komo_faults"
NAMES = ("sigkill", "flaky", "outage", "unauthorized", "db_down", "shared")
FULL = {"sigkill": 5000, "kills": 6, "flaky": 2000, "outage": 500, "doomed": 200,
        "unauthorized": 2000, "db_down": 600, "shared": 1500}
QUICK = {"sigkill": 600, "kills": 3, "flaky": 300, "outage": 150, "doomed": 40,
         "unauthorized": 400, "db_down": 150, "shared": 300}


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts (a quick look)")
    parser.add_argument("--only", nargs="*", default=[], help="scenario names to run")
    parser.add_argument("--fuzz-examples", type=int, default=1500)
    return parser.parse_args()


def _services() -> tuple[str, str]:
    pg = os.environ.get("FAULTS_PG", "postgres://postgres@127.0.0.1:5432").rstrip("/")
    redis_url = os.environ.get("FAULTS_REDIS", "redis://127.0.0.1:6379/13")
    return pg, redis_url


def _database_recreate(pg: str) -> str:
    import psycopg

    with psycopg.connect(f"{pg}/postgres", autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DATABASE}")
    return f"{pg}/{DATABASE}"


def _database_drop(pg: str) -> None:
    import psycopg

    with psycopg.connect(f"{pg}/postgres", autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")


def _redis_flush(redis_url: str) -> None:
    import redis

    redis.Redis.from_url(redis_url, socket_connect_timeout=5).flushdb()


def _environment(database_url: str, redis_url: str, workdir: Path) -> dict[str, str]:
    return {
        "DJANGO_SETTINGS_MODULE": "portal.settings_test",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "Q_SYNC": "false",
        "Q_CLUSTER_NAME": "faults",
        "PORTAL_VAR_DIR": str(workdir / "var"),
        "BRAZE_EXTRA_ENDPOINTS": "http://127.0.0.1:",
        "DELIVERY_CLAIM_SECONDS": "5",
        "SWEEP_INTERVAL_SECONDS": "1",
        "FAULTS_FIGURES_DIR": str(workdir / "figures"),
        "LOG_LEVEL": "WARNING",
    }


def _scenarios(counts: dict[str, int]) -> dict[str, Callable[[Any], Any]]:
    from tests.faults import scenarios as s

    return {
        "sigkill": lambda ctx: s.sigkill_mid_batch(
            ctx, submissions=counts["sigkill"], kills=counts["kills"], web=True, seconds=240),
        "flaky": lambda ctx: s.flaky_braze(ctx, submissions=counts["flaky"], batch=25,
                                           seconds=200),
        "outage": lambda ctx: s.long_outage(
            ctx, submissions=counts["outage"], doomed=counts["doomed"]),
        "unauthorized": lambda ctx: s.unauthorized_mid_drain(
            ctx, submissions=counts["unauthorized"], seconds=150),
        "db_down": lambda ctx: s.database_down_during_intake(ctx, submissions=counts["db_down"]),
        "shared": lambda ctx: s.two_webs_two_clusters(
            ctx, submissions=counts["shared"], rate_limit=10, rate_window=1.0, batch=10),
    }


def _run_scenarios(names: list[str], counts: dict[str, int], workdir: Path) -> list[dict]:
    from django.core.cache import cache

    from integrations.braze_sandbox import BrazeSandbox
    from tests.faults import scenarios
    from tests.faults.report import FaultRow

    rows: list[dict] = []
    chosen = _scenarios(counts)
    with BrazeSandbox(port=0, api_keys=scenarios.API_KEYS, log_limit=200_000) as sandbox:
        for name in names:
            print(f"== fault: {name}", flush=True)
            cache.clear()
            ctx = scenarios.Context(sandbox=sandbox, workdir=workdir / name,
                                    log=lambda line: print(line, flush=True))
            ctx.workdir.mkdir(parents=True, exist_ok=True)
            try:
                row = chosen[name](ctx)
            except Exception as exc:  # a scenario that breaks is a failed row, not a crash
                row = FaultRow(fault=name, ok=False, notes={"error": repr(exc)[:300]})
            print(f"   {row.as_dict()}", flush=True)
            rows.append(row.as_dict())
    return rows


def _pytest_figures(env: dict[str, str], fuzz_examples: int) -> tuple[dict, dict, dict, int]:
    """Fuzz, schemathesis and the secrets scan in the suite's own harness, on PostgreSQL."""
    from tests.faults.report import figures_load

    command = [
        sys.executable, "-m", "pytest", "-q", "-p", "no:randomly",
        "tests/test_webhook_fuzz.py", "tests/test_schema.py", "tests/test_secrets_leak.py",
    ]
    run_env = {**os.environ, **env, "FUZZ_EXAMPLES": str(fuzz_examples),
               "SCHEMA_EXAMPLES": str(max(60, fuzz_examples // 10)), "Q_SYNC": "true"}
    print("== fuzz, schemathesis, secrets (pytest)", flush=True)
    result = subprocess.run(command, cwd=BASE_DIR, env=run_env, timeout=900)
    return (figures_load("fuzz") or {}, figures_load("schemathesis") or {},
            figures_load("secrets") or {}, result.returncode)


def _closing(rows: list[dict], fuzz: dict, schema: dict, secrets: dict, pytest_status: int
             ) -> tuple[str, bool]:
    from tests.faults.report import table, totals

    total = totals(rows)
    lines = [
        table(rows), "",
        f"totals: faults injected {total['injected']}, submissions sent {total['sent']}, "
        f"delivered {total['delivered']}, lost {total['lost']}, duplicated "
        f"{total['duplicated']}, failed (by design) {total['failed']}",
        f"fuzz: {fuzz.get('cases', 0)} cases run, {fuzz.get('5xx', '?')} 5xx seen "
        f"({fuzz.get('by_status', {})})",
        f"schemathesis: {schema.get('cases', 0)} cases run, {schema.get('5xx', 0)} 5xx seen",
        f"secrets found: {secrets.get('found', '?')} (scanned {secrets.get('scanned', {})})",
    ]
    ok = (all(row.get("ok") for row in rows) and total["lost"] == 0
          and fuzz.get("5xx") == 0 and schema.get("5xx", 0) == 0 and secrets.get("found") == 0
          and pytest_status == 0)
    lines.append("RESULT: " + ("ok" if ok else "FAILED"))
    return "\n".join(lines), ok


def main() -> int:
    args = _arguments()
    counts = QUICK if args.quick else FULL
    unknown = sorted(set(args.only) - set(NAMES))
    if unknown:
        print(f"unknown scenario(s) {unknown}; choose from {list(NAMES)}")
        return 2
    names = args.only or list(NAMES)
    pg, redis_url = _services()
    started = time.monotonic()
    try:
        database_url = _database_recreate(pg)
        _redis_flush(redis_url)
    except Exception as exc:
        print(f"make faults needs PostgreSQL ({pg}) and Redis ({redis_url}): {exc}")
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="komo-faults-"))
    env = _environment(database_url, redis_url, workdir)
    os.environ.update(env)
    sys.path.insert(0, str(BASE_DIR))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    try:
        rows = _run_scenarios(names, counts, workdir)
    finally:
        from django.db import connections

        connections.close_all()
    _redis_flush(redis_url)
    fuzz, schema, secrets, status = _pytest_figures(env, args.fuzz_examples)
    text, ok = _closing(rows, fuzz, schema, secrets, status)
    _database_drop(pg)
    minutes = (time.monotonic() - started) / 60
    text += f"\n(run took {minutes:.1f} minutes)"
    print("\n" + text)
    out = BASE_DIR / "test-artifacts" / "faults.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

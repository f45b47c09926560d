"""``make bench-volume``: the pages and the delivery queries with millions of submissions.

    python -m tests.bench.volume [--rows 5000000] [--hubs 20] [--days 90] [--samples 20]
                                 [--no-load] [--no-retention] [--retention-days N]

On PostgreSQL (``VOLUME_DATABASE_URL``, default ``postgres://postgres@127.0.0.1:5432/
portal_volume``; the database is emptied and refilled unless ``--no-load``):

1. load: hubs from the demo hub's configuration; a pool of distinct people and payloads stored
   by the webhook's own ``submission_receive`` (so every column, encrypted or hashed, is written
   exactly as intake writes it); then the pool multiplied in SQL (``INSERT … SELECT
   generate_series``, one statement per hub) to ``--rows`` submissions over ``--days`` days,
   skewed across hubs, with one delivery attempt per 50 delivered submissions (copied from an
   attempt row written by the ORM) and its attempt items; a few hundred rows left due;
2. pages, warm, in this process through Django's test client as a superuser: each page's p50
   and p95 over ``--samples`` requests;
3. the delivery claim (``submissions_claim``, rolled back) and the sweep's hub query, p50/p95;
4. bytes on disk per submission: submissions, attempts and attempt items, tables + indexes;
5. after retention: every hub's ``retention_days`` set to ``--retention-days`` (30), then
   ``manage.py retention_apply`` and VACUUM, then 2 and 4 again, and the live bytes a submission
   keeps within and past the window (sampled ``pg_column_size``).

Every figure is printed in one table (tests/bench/report.py). The machine's load average is
printed with it: the box is shared.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from tests.bench.report import Row, print_table
from tests.bench.stack import FIELD_KEY

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/portal_volume"
POOL_PER_HUB = 200
ATTEMPT_BATCH = 50
DUE_PER_HUB = 15
PAGE_TARGET_MS = 300.0
QUERY_TARGET_MS = 5.0
SAMPLES_DIR = Path(__file__).resolve().parents[2] / "integrations" / "demo" / "samples"
FIRST = ["Priya", "Liam", "Mei", "Noah", "Aroha", "Sofia", "Kenji", "Olivia", "Omar", "Zoe"]
LAST = ["Natarajan", "Smith", "Wong", "Brown", "Ngata", "Rossi", "Sato", "Taylor", "Haddad", "Lee"]


def database_url() -> str:
    return os.environ.get("DATABASE_URL") or os.environ.get("VOLUME_DATABASE_URL", DEFAULT_URL)


def database_create_missing(url: str) -> None:
    """Create the bench's database when this server has none of that name (a new machine)."""
    import psycopg
    from psycopg import sql

    info = psycopg.conninfo.conninfo_to_dict(url)
    name = info.get("dbname") or "postgres"
    with psycopg.connect(**{**info, "dbname": "postgres"}, autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not found:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def django_setup() -> None:
    os.environ["DATABASE_URL"] = database_url()
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DEBUG": "false",
        "SECRET_KEY": "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
        "FIELD_ENCRYPTION_KEYS": FIELD_KEY,
        "SECURE_SSL_REDIRECT": "false",
        "ALLOWED_HOSTS": "testserver,localhost",
        "Q_SYNC": "false",
        "EMAIL_URL": "dummymail://",  # the alerts check sends nothing from a bench
    })
    os.environ.setdefault("STATIC_ROOT", os.path.join(tempfile.gettempdir(), "portal-bench-static"))
    import django

    django.setup()
    from django.core.management import call_command

    # Production settings serve hashed static files from collectstatic's manifest (WhiteNoise):
    # the pages need it, as in a release.
    call_command("collectstatic", "--noinput", verbosity=0)
    from django.db import connection

    if connection.vendor != "postgresql":
        sys.exit("bench-volume needs PostgreSQL (VOLUME_DATABASE_URL)")


# --- 1. load ----------------------------------------------------------------------------------


def hub_sizes(rows: int, hubs: int) -> list[int]:
    """Skewed like real traffic: hub i gets a share proportional to 1/sqrt(i+1)."""
    weights = [1 / math.sqrt(i + 1) for i in range(hubs)]
    total = sum(weights)
    sizes = [int(rows * w / total) for w in weights]
    sizes[0] += rows - sum(sizes)
    return sizes


def _payload(sample: dict, hub_index: int, person: int) -> dict:
    payload = dict(sample)
    first, last = FIRST[person % len(FIRST)], LAST[(person // len(FIRST)) % len(LAST)]
    payload.update({
        "id": str(uuid.uuid4()),
        "email": f"{first}.{last}.{hub_index}.{person}@example.com",
        "first_name": first,
        "last_name": last,
        "mobile": f"04{hub_index:02d} {person:03d} {person % 997:03d}",
        "timestamp": "2026-03-14T09:26:53.589Z",
    })
    return payload


def load(rows: int, hubs: int, days: int) -> list[str]:
    from django.core.management import call_command
    from django.db import connection

    notes = []
    started = time.monotonic()
    _empty()  # first: migrations then run on empty tables, whatever the last load left
    call_command("migrate", verbosity=0)
    hub_objects = _hubs(hubs)
    pool = _pool(hub_objects)
    notes.append(f"pool: {pool} submissions stored by submission_receive")
    templates = {hub.pk: _attempt_template(hub) for hub in hub_objects}
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '256MB'")
        cursor.execute("SET synchronous_commit = off")
        cursor.execute("CREATE TEMP TABLE volume_pool AS SELECT *, 0 AS k FROM "
                       "integrations_submission")
        cursor.execute("UPDATE volume_pool p SET k = r.k FROM (SELECT id, row_number() OVER "
                       "(PARTITION BY hub_id ORDER BY id) - 1 AS k FROM volume_pool) r "
                       "WHERE r.id = p.id")
        cursor.execute("CREATE INDEX ON volume_pool (hub_id, k)")
        cursor.execute("TRUNCATE integrations_submission CASCADE")
        columns = _columns(cursor, "integrations_submission")
        sizes = hub_sizes(rows, hubs)
        for hub, size in zip(hub_objects, sizes, strict=True):
            hub_started = time.monotonic()
            _multiply(cursor, hub.pk, size, days, columns, templates[hub.pk])
            print(f"  hub {hub.slug}: {size:,} submissions in "
                  f"{time.monotonic() - hub_started:.0f} s", flush=True)
        for table in ("integrations_submission", "integrations_deliveryattempt",
                      "integrations_attemptitem"):
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                           f"(SELECT max(id) FROM {table}))")
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) integrations_submission")
        cursor.execute("VACUUM (ANALYZE) integrations_deliveryattempt")
        cursor.execute("VACUUM (ANALYZE) integrations_attemptitem")
    notes.append(f"load: {rows:,} submissions over {hubs} hubs and {days} days in "
                 f"{time.monotonic() - started:.0f} s (sizes {sizes[0]:,} … {sizes[-1]:,})")
    return notes


def _empty() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                       "AND (tablename LIKE %s OR tablename LIKE %s)",
                       ["integrations\\_%", "django\\_q\\_%"])
        tables = [name for (name,) in cursor.fetchall()]
        if tables:
            cursor.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")


def _hubs(count: int) -> list:
    from integrations.demo import DEMO_HUB_CONFIG
    from integrations.services.hubs import hub_config_import

    hubs = []
    for index in range(count):
        config = json.loads(json.dumps(DEMO_HUB_CONFIG))
        config.update({"slug": f"volume-{index:02d}", "name": f"Volume hub {index:02d}",
                       "active": False,
                       "braze": {"rest_endpoint": "https://rest.iad-01.braze.com",
                                 "api_key": f"volume-bench-key-{index:04d}"}})
        config.pop("transactional", None)
        hub, _ = hub_config_import(config=config)
        hubs.append(hub)
    return hubs


def _pool(hubs: list) -> int:
    """Distinct people and payloads, stored by the webhook's own intake function (hubs are off
    while it runs, so nothing is triggered)."""
    from integrations.services.intake import submission_receive

    samples = {name: json.loads((SAMPLES_DIR / f"{name}.json").read_text())
               for name in ("competition-entry", "prize-awarded", "quiz-started", "card-viewed")}
    stored = 0
    for index, hub in enumerate(hubs):
        for person in range(POOL_PER_HUB):
            # mostly entries; every 30th a card view, which the demo hub does not deliver
            name = ("card-viewed" if person % 30 == 29 else "prize-awarded" if person % 10 == 3
                    else "quiz-started" if person % 10 == 5 else "competition-entry")
            payload = _payload(samples[name], index, person)
            submission_receive(hub=hub, payload=payload, text=json.dumps(payload))
            stored += 1
    return stored


def _attempt_template(hub) -> int:
    """One delivery attempt written by the ORM with a realistic request body (50 objects)."""
    from integrations.batching import batch_build
    from integrations.mapping import map_submission
    from integrations.models import DeliveryAttempt, Submission
    from integrations.services.delivery import objects_of

    spec = hub.to_spec()
    mapped = []
    for submission in Submission.objects.filter(hub=hub).order_by("id")[:ATTEMPT_BATCH]:
        payload = submission.payload if isinstance(submission.payload, dict) else {}
        result = map_submission(spec, payload)
        if result.deliverable:
            mapped.append((str(submission.pk), objects_of(result)))
    batch, _ = batch_build(mapped)
    body = json.dumps(batch.body)
    attempt = DeliveryAttempt.objects.create(
        hub=hub, endpoint="https://rest.iad-01.braze.com/users/track", request_body=batch.body,
        request_bytes=len(body), status_code=201, outcome="success", duration_ms=180.0,
        response_body='{"attributes_processed":50,"events_processed":50,"message":"success"}',
    )
    return attempt.pk


def _columns(cursor, table: str) -> list[str]:
    cursor.execute("SELECT column_name FROM information_schema.columns WHERE table_name = %s "
                   "ORDER BY ordinal_position", [table])
    return [name for (name,) in cursor.fetchall()]


# Each submission's fate, by its number g within the hub: the last DUE_PER_HUB are due now;
# otherwise 1.5 % failed, 1 % held, the rest delivered (card views stay ignored, as received).
STATUS = ("CASE WHEN g >= {size} - {due} THEN 'pending' WHEN p.status = 'ignored' THEN 'ignored' "
          "WHEN g % 200 < 3 THEN 'failed' WHEN g % 200 < 5 THEN 'held' ELSE 'delivered' END")


def _multiply(cursor, hub_id: int, size: int, days: int, columns: list[str],
              template_attempt: int) -> None:
    cursor.execute("SELECT coalesce(max(id), 0) FROM integrations_submission")
    (base,) = cursor.fetchone()
    cursor.execute("SELECT coalesce(max(id), 0) FROM integrations_deliveryattempt")
    (attempt_base,) = cursor.fetchone()
    status = STATUS.format(size=size, due=DUE_PER_HUB)
    received = (f"now() - interval '{days} days' * (1 - g::float8 / {size}) "
                "- interval '2 minutes'")
    overrides = {
        "id": f"{base} + 1 + g",
        "public_id": "gen_random_uuid()",
        "komo_id": "p.komo_id || '-' || g",
        "received_at": received,
        "komo_timestamp": f"{received} - interval '1 second'",
        "status": status,
        "status_reason": (f"CASE ({status}) WHEN 'failed' THEN 'Braze refused the request (400)' "
                          "WHEN 'held' THEN 'email: not an email address' ELSE '' END"),
        "attempts": f"CASE ({status}) WHEN 'delivered' THEN 1 WHEN 'failed' THEN 8 ELSE 0 END",
        "next_attempt_at": f"CASE ({status}) WHEN 'pending' THEN now() - interval '5 seconds' "
                           "ELSE NULL END",
        "delivered_at": (f"CASE ({status}) WHEN 'delivered' THEN {received} + interval "
                         "'2 seconds' ELSE NULL END"),
        "claimed_until": "NULL",
        "claim_token": "NULL",
    }
    select = ", ".join(overrides.get(name, f"p.{name}") for name in columns)
    cursor.execute(
        f"INSERT INTO integrations_submission ({', '.join(columns)}) "  # noqa: S608
        f"SELECT {select} FROM generate_series(0, {size - 1}) g "
        f"JOIN volume_pool p ON p.hub_id = {hub_id} AND p.k = g % {POOL_PER_HUB}"
    )
    # one attempt per ATTEMPT_BATCH submissions of the hub, copied from the ORM-written one
    attempt_columns = _columns(cursor, "integrations_deliveryattempt")
    attempt_overrides = {
        "id": f"{attempt_base} + 1 + a",
        "started_at": (f"now() - interval '{days} days' * (1 - (a * {ATTEMPT_BATCH})::float8 "
                       f"/ {size}) - interval '2 minutes' + interval '1 second'"),
    }
    attempt_select = ", ".join(attempt_overrides.get(name, f"t.{name}")
                               for name in attempt_columns)
    attempts = math.ceil(size / ATTEMPT_BATCH)
    cursor.execute(
        f"INSERT INTO integrations_deliveryattempt ({', '.join(attempt_columns)}) "  # noqa: S608
        f"SELECT {attempt_select} FROM generate_series(0, {attempts - 1}) a "
        f"JOIN integrations_deliveryattempt t ON t.id = {template_attempt}"
    )
    cursor.execute(
        "INSERT INTO integrations_attemptitem (attempt_id, submission_id, result, error) "  # noqa: S608
        f"SELECT {attempt_base} + 1 + (s.id - {base} - 1) / {ATTEMPT_BATCH}, s.id, "
        "CASE s.status WHEN 'failed' THEN 'failed' ELSE 'delivered' END, '' "
        f"FROM integrations_submission s WHERE s.id > {base} "
        "AND s.status IN ('delivered', 'failed')"
    )


# --- 2.–4. measure ----------------------------------------------------------------------------


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]
    return statistics.median(ordered), p95


def _timed(run: Callable[[], object], samples: int) -> tuple[float, float]:
    run()  # warm
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return _percentiles(times)


def pages(samples: int, label: str) -> list[Row]:
    from django.contrib.auth import get_user_model
    from django.test import Client

    from integrations.models import DeliveryAttempt, Hub, Submission

    user, _ = get_user_model().objects.get_or_create(
        username="volume-bench", defaults={"is_staff": True, "is_superuser": True})
    client = Client()
    client.force_login(user)
    busiest = Hub.objects.get(slug="volume-00")
    failed = Submission.objects.filter(hub=busiest, status="failed").only("public_id").first()
    some = Submission.objects.filter(hub=busiest).order_by("id")[1000:1001].get()
    attempt = DeliveryAttempt.objects.filter(hub=busiest).order_by("-id").first()
    email = f"{FIRST[7]}.{LAST[0]}.0.7@example.com"  # a person of the pool (hub 0, person 7)
    admin = "/admin/integrations/"
    urls = [
        ("hub list", "/"),
        ("admin hub list", f"{admin}hub/"),
        ("dashboard, busiest hub", f"/hubs/{busiest.slug}/"),
        ("admin submissions, unfiltered", f"{admin}submission/"),
        ("admin submissions, page 1000", f"{admin}submission/?p=999"),
        ("admin submissions, one hub", f"{admin}submission/?hub__id__exact={busiest.pk}"),
        ("admin submissions, status failed", f"{admin}submission/?status__exact=failed"),
        ("admin submissions, event", f"{admin}submission/?event=PrizeAwarded"),
        ("admin search by email", f"{admin}submission/?q={email}"),
        ("admin search by phone", f"{admin}submission/?q=0400%20007%20007"),
        ("admin search by Komo id", f"{admin}submission/?q={some.komo_id}"),
        ("submission detail", f"/submissions/{failed.public_id}/"),
        ("admin submission", f"{admin}submission/{failed.pk}/change/"),
        ("preview with a submission", f"/hubs/{busiest.slug}/preview/?submission="
                                      f"{some.public_id}"),
        ("admin attempts", f"{admin}deliveryattempt/"),
        ("admin attempts, one hub", f"{admin}deliveryattempt/?hub__id__exact={busiest.pk}"),
        ("admin attempt", f"{admin}deliveryattempt/{attempt.pk}/change/"),
        ("admin config changes", f"{admin}configchange/"),
        ("audit log, busiest hub", f"/hubs/{busiest.slug}/audit/"),
        ("audit log CSV, busiest hub", f"/hubs/{busiest.slug}/audit.csv"),
    ]
    rows = []
    for name, url in urls:
        status = client.get(url).status_code
        if status != 200:
            rows.append(Row(f"{label} {name}", f"HTTP {status}", "200", False))
            continue
        p50, p95 = _timed(lambda url=url: client.get(url), samples)
        rows.append(Row(f"{label} {name} p50 / p95", f"{p50:,.0f} / {p95:,.0f} ms",
                        f"p95 < {PAGE_TARGET_MS:.0f} ms", p95 < PAGE_TARGET_MS))
        print(f"  {name}: {p50:,.0f} / {p95:,.0f} ms", flush=True)
    return rows


def _explain_ms(queryset) -> float:
    """Planning + execution time of ``queryset``'s SQL, by EXPLAIN ANALYZE (server side only)."""
    from django.db import connection

    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params)
        (plan,) = cursor.fetchone()
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return plan[0]["Planning Time"] + plan[0]["Execution Time"]


def queries(samples: int) -> list[Row]:
    """The claim's SELECT … FOR UPDATE SKIP LOCKED and the sweep's hub query by EXPLAIN ANALYZE
    (in a transaction rolled back), and the whole claim as the worker calls it."""
    from django.db import transaction
    from django.utils import timezone

    from integrations.models import Hub, Submission
    from integrations.services.delivery import submissions_claim, submissions_claimable
    from integrations.services.sweep import hubs_with_due_submissions

    Hub.objects.update(active=True)
    due = Submission.objects.filter(status="pending").count()
    busiest = Hub.objects.get(slug="volume-00")

    def explained(make) -> tuple[float, float]:
        times = []
        for _ in range(samples + 1):
            with transaction.atomic():
                times.append(_explain_ms(make()))
                transaction.set_rollback(True)
        return _percentiles(times[1:])

    def claim() -> None:
        with transaction.atomic():
            submissions_claim(hub_id=busiest.pk, limit=50)
            transaction.set_rollback(True)

    def alerts() -> None:  # every active hub's health and alert states (mails rolled back)
        from integrations.tasks import alerts_check

        with transaction.atomic():
            alerts_check()
            transaction.set_rollback(True)

    figures = [
        ("claim SELECT (EXPLAIN ANALYZE)", explained(lambda: submissions_claimable(
            hub_id=busiest.pk, limit=50, now=timezone.now())), QUERY_TARGET_MS),
        ("sweep hub query (EXPLAIN ANALYZE)",
         explained(lambda: hubs_with_due_submissions()), QUERY_TARGET_MS),
        ("claim of 50 as the worker runs it (Python)", _timed(claim, samples), None),
        ("alerts check, every hub (the every-minute schedule)", _timed(alerts, samples), None),
    ]
    return [
        Row(f"{name}, {due} rows due, p50 / p95", f"{p50:.1f} / {p95:.1f} ms",
            f"< {target:.0f} ms" if target else "", p95 < target if target else None)
        for name, (p50, p95), target in figures
    ]


def disk(label: str) -> list[Row]:
    from django.db import connection

    tables = ("integrations_submission", "integrations_deliveryattempt",
              "integrations_attemptitem")
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM integrations_submission")
        (count,) = cursor.fetchone()
        rows = []
        total = 0
        for table in tables:
            cursor.execute("SELECT pg_table_size(%s), pg_indexes_size(%s)", [table, table])
            data, indexes = cursor.fetchone()
            total += data + indexes
            rows.append(Row(f"{label} {table.removeprefix('integrations_')} table + indexes",
                            f"{data / 2**20:,.0f} + {indexes / 2**20:,.0f} MB"))
    rows.append(Row(f"{label} bytes per submission (tables + indexes)",
                    f"{total / max(count, 1):,.0f} B ({count:,} submissions)"))
    return rows


def kept_bytes(label: str) -> list[Row]:
    """What a submission keeps, by the bytes of its live rows (sampled), split by redacted or
    not: PostgreSQL does not give freed pages back to the file system (VACUUM makes them
    reusable by new rows, which is what keeps storage bounded under steady traffic), so the
    files' size alone cannot show what retention removed."""
    from django.db import connection

    rows = []
    with connection.cursor() as cursor:
        for redacted in (False, True):
            cursor.execute(
                "SELECT count(*), coalesce(avg(pg_column_size(s.*)), 0) FROM "
                "integrations_submission s TABLESAMPLE SYSTEM (2) WHERE redacted_at IS "
                + ("NOT NULL" if redacted else "NULL")
            )
            count, size = cursor.fetchone()
            cursor.execute(
                "SELECT coalesce(avg(pg_column_size(a.*)), 0) FROM integrations_deliveryattempt a"
                " TABLESAMPLE SYSTEM (5) WHERE redacted_at IS "
                + ("NOT NULL" if redacted else "NULL")
            )
            (attempt,) = cursor.fetchone()
            state = "personal data removed" if redacted else "within the window"
            rows.append(Row(f"{label} live row bytes: submission {state} / attempt",
                            f"{float(size):,.0f} B / {float(attempt):,.0f} B (sample {count:,})"))
    return rows


def retention(samples: int, days: int) -> tuple[list[Row], list[str]]:
    from django.core.management import call_command, get_commands

    if "retention_apply" not in get_commands():
        return [], ["after retention: skipped, no `manage.py retention_apply` command yet"]
    from integrations.models import Hub

    Hub.objects.update(retention_days=days)  # the data spans --days; a shorter window shows it
    started = time.monotonic()
    call_command("retention_apply")
    note = (f"retention_apply with retention_days={days} ran in "
            f"{time.monotonic() - started:.0f} s")
    from django.db import connection

    with connection.cursor() as cursor:
        for table in ("integrations_submission", "integrations_deliveryattempt",
                      "integrations_attemptitem"):
            cursor.execute(f"VACUUM (ANALYZE) {table}")
    return [*pages(samples, "after retention:"), *disk("after retention:"),
            *kept_bytes("after retention:")], [note]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--hubs", type=int, default=20)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--no-load", action="store_true", help="measure the loaded data again")
    parser.add_argument("--no-retention", action="store_true")
    parser.add_argument("--retention-days", type=int, default=30,
                        help="every hub's retention_days for the after-retention phase")
    args = parser.parse_args(argv)
    if not args.no_load:
        database_create_missing(database_url())
    django_setup()
    notes = [f"load average before: {os.getloadavg()[0]:.1f} (2 cores, shared)"]
    if not args.no_load:
        notes += load(args.rows, args.hubs, args.days)
    rows = [*pages(args.samples, ""), *queries(args.samples), *disk(""), *kept_bytes("")]
    if not args.no_retention:
        extra, extra_notes = retention(args.samples, args.retention_days)
        rows += extra
        notes += extra_notes
    notes.append(f"load average after: {os.getloadavg()[0]:.1f}")
    print_table(rows)
    for note in notes:
        print(f"note: {note}")


if __name__ == "__main__":
    main()

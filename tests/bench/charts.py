"""The charts' queries on one hub with a million submissions (docs/scaling.md, "Charts").

    python -m tests.bench.charts [--rows 2000000] [--hubs 2] [--days 30] [--samples 20]
                                 [--no-load]

On PostgreSQL (``CHARTS_DATABASE_URL``, default ``postgres://postgres@127.0.0.1:5432/
portal_charts``; emptied and refilled unless ``--no-load``) with ``make bench-volume``'s loader
(tests/bench/volume.py): ``--hubs`` hubs sharing ``--rows`` submissions over ``--days`` days (the
first, measured, gets 1.17 M of the default 2 M), one attempt per 50 delivered; then one attempt
now that redelivers 50 submissions spread over the 30 days. Timed and by EXPLAIN ANALYZE (plans
printed):

1. the first fill of the rollup: the hub's 30 days, a day per query (``hub_stats_update``);
2. the minute's refresh: the hub query, the previous and current hour, and the older hours
   touched by the last 10 minutes' attempts;
3. the dashboard's chart reads: 48 hours and 30 days, and the whole dashboard page.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import time

from tests.bench.report import Row, print_table

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/portal_charts"


def explain(queryset, title: str) -> float:
    """Print the plan of ``queryset`` by EXPLAIN ANALYZE; return planning + execution ms."""
    from django.db import connection

    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
        lines = [line for (line,) in cursor.fetchall()]
    print(f"\n--- {title}\n" + "\n".join(lines), flush=True)
    total = 0.0
    for line in lines:
        for label in ("Planning Time: ", "Execution Time: "):
            if line.startswith(label):
                total += float(line.removeprefix(label).removesuffix(" ms"))
    return total


def timed(run, samples: int) -> tuple[float, float]:
    durations = []
    for _ in range(samples):
        started = time.perf_counter()
        run()
        durations.append((time.perf_counter() - started) * 1000)
    durations.sort()
    return durations[len(durations) // 2], durations[min(len(durations) - 1,
                                                         int(len(durations) * 0.95))]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--hubs", type=int, default=2,
                        help="the first (largest) is measured; 2 × 1 M rows give it 1.17 M")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--no-load", action="store_true")
    args = parser.parse_args(argv)
    os.environ["VOLUME_DATABASE_URL"] = os.environ.get("CHARTS_DATABASE_URL", DEFAULT_URL)
    os.environ.setdefault("STATIC_ROOT", "/tmp/charts-bench-static")  # the page's manifest
    from tests.bench import volume

    volume.django_setup()
    from django.db.models.functions import Mod
    from django.test import Client
    from django.utils import timezone

    from integrations.models import (
        AttemptItem,
        DeliveryAttempt,
        Hub,
        HubHourlyStats,
        Submission,
    )
    from integrations.selectors_charts import hub_chart_buckets
    from integrations.services import hub_stats

    rows: list[Row] = []
    notes: list[str] = []
    if not args.no_load:
        notes += volume.load(args.rows, args.hubs, args.days)
    hub = Hub.objects.get(slug="volume-00")
    count = Submission.objects.filter(hub=hub).count()
    notes.append(f"hub {hub.slug}: {count:,} submissions, "
                 f"{DeliveryAttempt.objects.filter(hub=hub).count():,} attempts")
    now = timezone.now()

    # 1. first fill (every hub, then the measured one again, alone)
    hub_stats.hub_stats_refresh(now=now)
    HubHourlyStats.objects.filter(hub=hub).delete()
    started = time.perf_counter()
    hours = hub_stats.hub_stats_update(hub_id=hub.pk, now=now, first=True)
    fill_ms = (time.perf_counter() - started) * 1000
    stored = HubHourlyStats.objects.filter(hub=hub).count()
    rows.append(Row("first fill: 30 days of the hub",
                    f"{fill_ms:,.0f} ms ({hours} hours, {stored} rows)"))

    # 2. the minute's refresh and its queries; support has just redelivered 50 old submissions
    old = list(Submission.objects.filter(hub=hub, status="delivered")
               .annotate(spread=Mod("id", max(1, count // 50))).filter(spread=0)
               .values_list("pk", flat=True)[:50])
    redelivery = DeliveryAttempt.objects.create(hub=hub, started_at=now, status_code=201,
                                                outcome="success", endpoint="https://bench")
    AttemptItem.objects.bulk_create(AttemptItem(attempt=redelivery, submission_id=pk,
                                                result="delivered") for pk in old)
    current = hub_stats.hour_floor(now)
    start = current - hub_stats.HOUR
    end = current + hub_stats.HOUR
    condition = hub_stats.SOURCES["live"]
    plans = {
        "refresh: hubs with something new": hub_stats.hubs_to_refresh(now),
        "refresh: received by hour and status (2 h)":
            hub_stats._received(hub.pk, start, end, condition),
        "refresh: delivered by hour and delay bucket (2 h)":
            hub_stats._delivered(hub.pk, start, end, condition),
        "refresh: Braze's answers by hour (2 h)": hub_stats._answers(hub.pk, start, end),
    }
    touched = hub_stats.older_hours_touched(hub.pk, since=now - hub_stats.OVERLAP,
                                            oldest=current - dt.timedelta(days=30), before=start)
    plans["refresh: older hours touched by the last 10 min's attempts"] = touched
    for title, queryset in plans.items():
        rows.append(Row(f"{title} (EXPLAIN ANALYZE)", f"{explain(queryset, title):.1f} ms"))
    p50, p95 = timed(lambda: hub_stats.hub_stats_update(hub_id=hub.pk, now=timezone.now()),
                     args.samples)
    rows.append(Row("refresh of the hub, whole (p50 / p95)", f"{p50:.1f} / {p95:.1f} ms"))

    # 3. reads
    for span in ("48h", "30d"):
        first_bucket = hub_chart_buckets(hub_id=hub.pk, span=span, now=now)[0].start
        queryset = HubHourlyStats.objects.filter(hub_id=hub.pk, source__in=["live", "backfill"],
                                                 hour__gte=first_bucket).order_by()
        title = f"chart read: {span}"
        rows.append(Row(f"{title} (EXPLAIN ANALYZE)", f"{explain(queryset, title):.1f} ms"))
        p50, p95 = timed(lambda s=span: hub_chart_buckets(hub_id=hub.pk, span=s), args.samples)
        rows.append(Row(f"chart buckets {span} in Python (p50 / p95)",
                        f"{p50:.1f} / {p95:.1f} ms"))
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("collectstatic", interactive=False, verbosity=0)

    user, _ = get_user_model().objects.get_or_create(
        username="charts-bench", defaults={"is_staff": True, "is_superuser": True})
    client = Client()
    client.force_login(user)
    for span in ("48h", "30d"):
        url = f"/hubs/{hub.slug}/?chart={span}"
        assert client.get(url).status_code == 200
        p50, p95 = timed(lambda u=url: client.get(u), args.samples)
        rows.append(Row(f"dashboard page, charts {span} (p50 / p95)",
                        f"{p50:.0f} / {p95:.0f} ms"))
    print_table(rows)
    print("\n".join(notes))


if __name__ == "__main__":
    main()

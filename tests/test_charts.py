"""The charts' hourly rollup (services.hub_stats), its reads and the dashboard's SVG charts."""

from __future__ import annotations

import datetime as dt
import re
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import translation

from integrations import charts
from integrations.models import (
    AttemptItem,
    DeliveryAttempt,
    HubHourlyStats,
    ItemResult,
    Submission,
    SubmissionStatus,
)
from integrations.selectors_charts import histogram_percentile, hub_chart_buckets
from integrations.services.hub_stats import hub_stats_refresh
from tests.test_views import hub_create, member

pytestmark = pytest.mark.django_db
UTC = dt.UTC
NOW = dt.datetime(2026, 12, 4, 15, 20, tzinfo=UTC)


def received(hub, at, status=SubmissionStatus.PENDING, delay_s=None):
    komo_id = str(uuid.uuid4())
    delivered_at = at + dt.timedelta(seconds=delay_s) if delay_s is not None else None
    return Submission.objects.create(hub=hub, komo_id=komo_id, event="CompetitionEntrySuccess",
                                     payload={"id": komo_id}, received_at=at, status=status,
                                     delivered_at=delivered_at)


def attempt(hub, at, status_code, submissions=()):
    made = DeliveryAttempt.objects.create(hub=hub, started_at=at, status_code=status_code,
                                          outcome="success", endpoint="https://x")
    for submission in submissions:
        AttemptItem.objects.create(attempt=made, submission=submission,
                                   result=ItemResult.DELIVERED)
    return made


def row(hub, hour) -> HubHourlyStats:
    return HubHourlyStats.objects.get(hub=hub, source="live", hour=hour)


def test_the_rollup_counts_received_by_outcome_delivered_with_delay_and_brazes_answers():
    # given
    hub = hub_create()
    this_hour = dt.datetime(2026, 12, 4, 15, tzinfo=UTC)
    for status in ("delivered", "delivered", "failed", "held", "ignored", "pending"):
        received(hub, this_hour + dt.timedelta(minutes=3), status,
                 delay_s=4 if status == "delivered" else None)
    received(hub, this_hour - dt.timedelta(minutes=50), "delivered", delay_s=50 * 60 + 300)
    for code in (201, 201, 400, 429, 503, None):
        attempt(hub, this_hour + dt.timedelta(minutes=5), code)
    # when
    report = hub_stats_refresh(now=NOW)
    # then
    assert report["hubs"] == 1
    now_row = row(hub, this_hour)
    assert (now_row.received, now_row.received_delivered, now_row.received_failed,
            now_row.received_held, now_row.received_ignored, now_row.received_pending) \
        == (6, 2, 1, 1, 1, 1)
    assert now_row.delivered == 3  # two received now, one received in the previous hour
    assert (now_row.answers_2xx, now_row.answers_4xx, now_row.answers_429, now_row.answers_5xx,
            now_row.answers_network) == (2, 1, 1, 1, 1)
    assert histogram_percentile(now_row.delay_histogram, 0.5) == pytest.approx(4, abs=1)
    assert histogram_percentile(now_row.delay_histogram, 0.95) > 300
    previous = row(hub, this_hour - dt.timedelta(hours=1))
    assert (previous.received, previous.received_delivered, previous.delivered) == (1, 1, 0)


def test_an_older_hour_is_recounted_when_an_attempt_changes_its_submissions():
    # given: counted yesterday while failed
    hub = hub_create()
    old_hour = dt.datetime(2026, 12, 3, 9, tzinfo=UTC)
    old = received(hub, old_hour + dt.timedelta(minutes=1), "failed")
    hub_stats_refresh(now=NOW - dt.timedelta(minutes=30))
    assert row(hub, old_hour).received_failed == 1
    # when: support redelivers it and Braze accepts it now
    Submission.objects.filter(pk=old.pk).update(status="delivered", delivered_at=NOW)
    attempt(hub, NOW - dt.timedelta(minutes=1), 201, [old])
    hub_stats_refresh(now=NOW)
    # then
    recounted = row(hub, old_hour)
    assert (recounted.received_failed, recounted.received_delivered) == (0, 1)
    assert row(hub, dt.datetime(2026, 12, 4, 15, tzinfo=UTC)).delivered == 1


def test_the_first_run_fills_thirty_days_and_reruns_change_nothing():
    # given
    hub = hub_create()
    for days in (1, 12, 29, 31):
        received(hub, NOW - dt.timedelta(days=days), "delivered", delay_s=2)
    # when
    hub_stats_refresh(now=NOW)
    first = sorted(HubHourlyStats.objects.values_list("hour", "received", "delivered"))
    hub_stats_refresh(now=NOW)
    again = sorted(HubHourlyStats.objects.values_list("hour", "received", "delivered"))
    # then
    assert sum(r for _, r, _ in first) == 3  # the 31-day-old one is outside the charts
    assert first == again


def test_a_quiet_hub_with_rows_is_left_alone():
    hub = hub_create()
    received(hub, NOW - dt.timedelta(days=3))
    hub_stats_refresh(now=NOW)
    assert hub_stats_refresh(now=NOW + dt.timedelta(minutes=1)) == {"hubs": 0, "hours": 0}


def test_a_webhook_writes_no_statistics(client, sandbox_hub):
    hub, token = sandbox_hub
    from tests.conftest import komo_entry

    response = client.post(reverse("hub_submissions", args=[hub.slug]), data=komo_entry(),
                           content_type="application/json",
                           headers={"authorization": f"Bearer {token}"})
    assert response.status_code in (200, 201, 202)
    assert not HubHourlyStats.objects.exists()


def test_the_charts_read_one_bounded_query_of_the_rollup():
    # given
    hub = hub_create()
    received(hub, NOW - dt.timedelta(minutes=5), "delivered", delay_s=3)
    hub_stats_refresh(now=NOW)
    # when
    with CaptureQueriesContext(connection) as queries:
        hours = hub_chart_buckets(hub_id=hub.pk, span="48h", now=NOW)
        days = hub_chart_buckets(hub_id=hub.pk, span="30d", now=NOW)
    # then
    assert len(queries) == 2
    assert all("integrations_submission" not in q["sql"] for q in queries.captured_queries)
    assert len(hours) == 48 and len(days) == 30
    assert hours[-1].received["delivered"] == 1 and days[-1].delivered == 1


def test_percentiles_from_the_histogram():
    histogram = [0] * 25
    histogram[4] = 100  # 3–5 s
    assert histogram_percentile(histogram, 0.5) == pytest.approx(4.0)
    assert histogram_percentile([0] * 25, 0.5) is None
    histogram[24] = 100  # over a day
    assert histogram_percentile(histogram, 0.95) == 86400


def test_stacked_bars_stack_and_scale():
    series = [charts.Series("a", "A", [1, 0, 3]), charts.Series("b", "B", [1, 2, 0])]
    chart = charts.stacked_bars(series, ["x", "y", "z"], label_every=1, y_format=str)
    heights = {(r.key, r.x): r.height for r in chart.rects}
    plot = chart.bottom - chart.top
    top_value = float(chart.y_ticks[-1][1])
    assert top_value >= 3
    assert sum(h for (_, x), h in heights.items() if x < chart.left + 200) == pytest.approx(
        plot * 2 / top_value, abs=0.1)
    assert len(chart.rects) == 4 and not chart.empty
    assert charts.nice_step(7) == 2 and charts.nice_step(1300) == 500


@pytest.mark.parametrize("language,title", [("en", "Deliveries over time"),
                                            ("de", "Zustellungen im Zeitverlauf"),
                                            ("ja", "配信の推移")])
def test_the_dashboard_draws_the_charts_with_a_table_in_each_language(client, language, title):
    # given
    hub = hub_create()
    received(hub, NOW.replace(minute=1) - dt.timedelta(hours=2), "delivered", delay_s=2)
    hub_stats_refresh()
    member(client, hub)
    # when
    with translation.override(language):
        url = reverse("integrations:hub_dashboard", args=[hub.slug])
        html = client.get(url, headers={"accept-language": language}).content.decode()
        days = client.get(url + "?chart=30d", headers={"accept-language": language})
    # then
    start = html.index('id="charts"')
    block = html[start:html.index("</section>", start)]
    assert title in html
    assert block.count("<svg") == 3 and block.count("<table") == 3
    assert 'role="img"' in block and "<desc" in block
    assert "style=" not in block and "<script" not in block
    assert days.status_code == 200 and 'aria-current="true">' in days.content.decode()
    assert not re.search(r'(x|y|width|height)="\d+,\d+"', block)  # numbers never localised


def test_an_unknown_span_falls_back_to_48_hours(client):
    hub = hub_create()
    member(client, hub)
    response = client.get(reverse("integrations:hub_dashboard", args=[hub.slug]) + "?chart=<x>")
    assert response.status_code == 200


def test_the_worker_refreshes_every_minute():
    from django_q.models import Schedule

    from integrations import tasks

    schedule = Schedule.objects.get(name="integrations.hub_stats_refresh")
    assert (schedule.func, schedule.schedule_type, schedule.minutes) == (
        "integrations.tasks.hub_stats_refresh", "I", 1)
    hub = hub_create()
    received(hub, dt.datetime.now(UTC) - dt.timedelta(minutes=2))
    assert tasks.hub_stats_refresh()["hubs"] == 1

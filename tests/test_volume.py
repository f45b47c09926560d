"""Pages and background queries stay bounded as submissions pile up (issue 9, "fast at volume").

Speed itself is measured by ``make bench-volume`` (tests/bench/volume.py) on PostgreSQL; these
tests pin the shape that makes it fast: one sweep trigger per hub, a bounded number of queries per
page, and no COUNT over a whole table.
"""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from integrations.models import (
    ConnectionStatus,
    Submission,
    SubmissionStatus,
    TransactionalSend,
)
from integrations.services import sweep


def _submissions(hub, count: int, **values) -> None:
    now = timezone.now()
    defaults = {"event": "CompetitionEntrySuccess", "payload": {"id": "x"},
                "status": SubmissionStatus.PENDING, "next_attempt_at": now - timedelta(seconds=5)}
    Submission.objects.bulk_create(
        Submission(hub=hub, komo_id=str(uuid.uuid4()), **{**defaults, **values})
        for _ in range(count)
    )


@pytest.fixture
def four_hubs(make_hub):
    busy, _ = make_hub(slug="busy", name="Busy")
    quiet, _ = make_hub(slug="quiet", name="Quiet")
    off, _ = make_hub(slug="off", name="Off", active=False)
    paused, _ = make_hub(slug="paused", name="Paused")
    paused.connection.status = ConnectionStatus.PAUSED
    paused.connection.save()
    return busy, quiet, off, paused


def test_the_sweep_triggers_each_hub_with_a_backlog_once(four_hubs, monkeypatch):
    # given: a backlog of due rows on two hubs, one switched off, one paused, and rows not due
    busy, quiet, off, paused = four_hubs
    _submissions(busy, 40)
    _submissions(quiet, 3)
    _submissions(quiet, 5, next_attempt_at=timezone.now() + timedelta(hours=1))
    _submissions(quiet, 5, claimed_until=timezone.now() + timedelta(minutes=1))
    _submissions(off, 10)
    _submissions(paused, 10)
    triggered: list[int] = []
    monkeypatch.setattr(sweep, "hub_delivery_trigger",
                        lambda *, hub_id: triggered.append(hub_id) or True)

    # when
    count = sweep.sweep_due()

    # then: once per hub with due work, never once per due row
    assert sorted(triggered) == sorted([busy.pk, quiet.pk])
    assert count == 2


def test_a_lapsed_lease_is_due_again(four_hubs, monkeypatch):
    busy = four_hubs[0]
    _submissions(busy, 4, claimed_until=timezone.now() - timedelta(seconds=1))
    triggered: list[int] = []
    monkeypatch.setattr(sweep, "hub_delivery_trigger",
                        lambda *, hub_id: triggered.append(hub_id) or True)

    sweep.sweep_due()

    assert triggered == [busy.pk]


def test_the_transactional_sweep_triggers_each_hub_once(four_hubs, monkeypatch):
    from integrations.services import transactional

    busy, quiet, off, _paused = four_hubs
    for hub, count in ((busy, 25), (quiet, 2), (off, 4)):
        _submissions(hub, count, status=SubmissionStatus.DELIVERED)
        TransactionalSend.objects.bulk_create(
            TransactionalSend(hub=hub, submission=submission, campaign_id="c",
                              external_send_id=str(uuid.uuid4()),
                              next_attempt_at=timezone.now() - timedelta(seconds=1))
            for submission in Submission.objects.filter(hub=hub)
        )
    triggered: list[int] = []
    monkeypatch.setattr(transactional, "transactional_trigger",
                        lambda *, hub_id: triggered.append(hub_id) or True)

    assert transactional.transactional_sweep() == 2
    assert sorted(triggered) == sorted([busy.pk, quiet.pk])


# --- pages: a bounded number of queries, no COUNT over a whole table --------------------------

GROWING = ('"integrations_submission"', '"integrations_deliveryattempt"',
           '"integrations_attemptitem"', '"integrations_configchange"')
COUNT = re.compile(r"^SELECT COUNT\(", re.IGNORECASE)


def _unbounded_counts(queries: list[dict]) -> list[str]:
    """Statements counting (or aggregating with COUNT … FILTER) rows without a LIMIT on what
    they count: a paginator's count, ``aggregate(Count(…))``. A COUNT of a LIMITed subquery, or
    one correlated per listed row, is bounded; the hubs table is a few dozen rows."""
    return [q["sql"] for q in queries if COUNT.search(q["sql"]) and "LIMIT" not in q["sql"]
            and any(table in q["sql"] for table in GROWING)]


def _get(client, url: str) -> list[dict]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, url
    return captured.captured_queries


@pytest.fixture
def superuser_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(user)
    return client


def _hubs_with_history(make_hub, count: int) -> list:
    hubs = []
    for index in range(count):
        hub, _ = make_hub(slug=f"hub-{index}", name=f"Hub {index}")
        _submissions(hub, 3, status=SubmissionStatus.DELIVERED, delivered_at=timezone.now())
        _submissions(hub, 2, status=SubmissionStatus.FAILED, next_attempt_at=None)
        _submissions(hub, 2)
        hubs.append(hub)
    return hubs


@pytest.mark.parametrize("url", ["/", "/admin/integrations/hub/"])
def test_the_hub_lists_ask_the_same_few_queries_for_two_hubs_or_six(
    make_hub, superuser_client, url
):
    _hubs_with_history(make_hub, 2)
    two = _get(superuser_client, url)
    _hubs_with_history(make_hub, 4)[0]
    six = _get(superuser_client, url)

    assert len(six) == len(two)
    assert _unbounded_counts(six) == []


def test_the_hub_list_shows_capped_counts_with_a_plus(make_hub, superuser_client, monkeypatch):
    from integrations import selectors

    monkeypatch.setattr(selectors, "HEALTH_COUNT_CAP", 2)
    _hubs_with_history(make_hub, 1)

    page = superuser_client.get("/").content.decode()

    assert "2+" in page


def test_the_dashboard_counts_nothing_whole(make_hub, superuser_client):
    hub = _hubs_with_history(make_hub, 1)[0]
    first = _get(superuser_client, f"/hubs/{hub.slug}/")
    _submissions(hub, 30, status=SubmissionStatus.DELIVERED, delivered_at=timezone.now())

    again = _get(superuser_client, f"/hubs/{hub.slug}/")

    assert len(again) == len(first)
    assert _unbounded_counts(again) == []


@pytest.mark.parametrize("query", ["", "?status__exact=failed", "?p=3", "?q=nobody@example.com"])
def test_the_submission_list_counts_at_most_a_capped_number(
    make_hub, superuser_client, query
):
    hub = _hubs_with_history(make_hub, 2)[0]
    queries = _get(superuser_client, f"/admin/integrations/submission/{query}")
    queries += _get(superuser_client, f"/admin/integrations/submission/?hub__id__exact={hub.pk}")

    assert _unbounded_counts(queries) == []
    assert not [q for q in queries if "DISTINCT" in q["sql"] and "integrations_submission" in
                q["sql"]], "a list filter scans the submissions for its choices"


def test_the_attempt_list_counts_at_most_a_capped_number(make_hub, superuser_client):
    _hubs_with_history(make_hub, 1)

    queries = _get(superuser_client, "/admin/integrations/deliveryattempt/")

    assert _unbounded_counts(queries) == []


# --- the capped paginator ---------------------------------------------------------------------


@pytest.fixture
def forty_rows(make_hub):
    hub, _ = make_hub()
    _submissions(hub, 40)
    return Submission.objects.order_by("-received_at", "-id")


def test_the_paginator_counts_up_to_its_cap_and_says_there_is_more(forty_rows):
    from integrations.admin_paging import CappedPaginator

    class Small(CappedPaginator):
        max_rows = 25

    paginator = Small(forty_rows, 10)

    assert paginator.count == 25
    assert paginator.capped
    assert paginator.num_pages == 3


def test_the_paginator_counts_exactly_below_its_cap(forty_rows):
    from integrations.admin_paging import CappedPaginator

    paginator = CappedPaginator(forty_rows, 10)

    assert paginator.count == 40
    assert not paginator.capped


def test_a_page_beyond_the_cap_is_the_last_counted_page(forty_rows):
    from integrations.admin_paging import CappedPaginator

    class Small(CappedPaginator):
        max_rows = 25

    page = Small(forty_rows, 10).page(1000)

    assert page.number == 3
    assert len(page.object_list) == 5  # rows 21-25: never an OFFSET past the cap
    assert list(page.object_list) == list(forty_rows[20:25])


def test_the_admin_list_says_more_when_capped(forty_rows, superuser_client, monkeypatch):
    from integrations.admin_paging import CappedPaginator

    monkeypatch.setattr(CappedPaginator, "max_rows", 30)

    page = superuser_client.get("/admin/integrations/submission/?p=1000").content.decode()

    assert "More than 30 submissions" in page

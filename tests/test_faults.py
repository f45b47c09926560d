"""The core of each fault of ``make faults``, with small counts: nothing lost, nobody let in.

The scenarios live in ``tests/faults/scenarios.py`` (shared with ``make faults``); the ones that
need processes (SIGKILLed qcluster workers, two clusters) are marked e2e and run real
``qcluster`` subprocesses on this suite's database (SQLite + ORM broker, or PostgreSQL + Redis
when ``DATABASE_URL``/``REDIS_URL`` say so). Figures go to the summary and
``test-artifacts/figures/faults-*.json``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from django.core.cache import cache, caches
from django.db import OperationalError, connection
from django.test import Client
from django.urls import reverse

from integrations.braze_sandbox import BrazeSandbox
from integrations.models import Submission, SubmissionStatus
from integrations.services.braze_api import braze_client
from tests.conftest import komo_entry
from tests.faults import scenarios
from tests.faults.report import FaultRow, figures_record
from tests.faults.scenarios import Context


@pytest.fixture(scope="module")
def fault_sandbox() -> Iterator[BrazeSandbox]:
    with BrazeSandbox(port=0, api_keys=scenarios.API_KEYS, log_limit=20_000) as sandbox:
        yield sandbox


@pytest.fixture
def ctx(fault_sandbox, tmp_path, request) -> Iterator[Context]:
    cache.clear()
    caches["throttle"].clear()
    braze_client.cache_clear()
    yield Context(sandbox=fault_sandbox, workdir=tmp_path, sweep=True,
                  log=lambda line: print(line))
    braze_client.cache_clear()


@pytest.fixture
def real_broker(monkeypatch):
    """Tasks go to the broker for the qcluster subprocesses (the suite runs django-q2 sync)."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", False)


def record(request: pytest.FixtureRequest, row: FaultRow) -> None:
    figures_record(request.config, f"faults-{request.node.name}", row.as_dict())
    assert row.lost == 0, row
    assert row.ok, row


# --- with real processes ----------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_sigkill_mid_batch_loses_nothing_and_duplicates_at_most_a_batch_per_kill(
    ctx, real_broker, request
):
    row = scenarios.sigkill_mid_batch(ctx, submissions=240, kills=2, workers=2, batch=20,
                                      seconds=90)
    record(request, row)
    assert row.delivered == row.sent == 240
    assert row.duplicated <= 2 * 20


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_401_mid_drain_pauses_at_once_and_a_new_key_resumes(ctx, real_broker, request):
    row = scenarios.unauthorized_mid_drain(ctx, submissions=200, workers=2, batch=20, seconds=60)
    record(request, row)
    assert row.notes["answers_401"] <= 2
    assert row.notes["requests_while_paused"] == 0
    assert row.delivered == 200


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_two_clusters_never_claim_one_submission_twice_and_share_the_budget(
    ctx, real_broker, request
):
    row = scenarios.two_webs_two_clusters(ctx, submissions=160, workers=2, batch=10,
                                          rate_limit=10, rate_window=1.0, web=False, seconds=90)
    record(request, row)
    assert row.duplicated == 0 and row.notes["double_claims"] == 0


# --- in this process --------------------------------------------------------------------------


@pytest.mark.django_db
def test_flaky_braze_delivers_everything_and_records_every_attempt(ctx, request):
    row = scenarios.flaky_braze(ctx, submissions=300, batch=25, chaos_every=3, seconds=90)
    record(request, row)
    assert row.delivered == 300 and row.failed == 0
    attempts = row.notes["attempts"]
    assert attempts.get("success", 0) >= 12  # 300 submissions, 25 a request
    assert sum(attempts.values()) > attempts["success"]  # faults were met and recorded
    assert row.injected > 0


@pytest.mark.django_db
def test_long_outage_waits_then_delivers_and_fails_only_after_the_whole_window(
    ctx, request, superuser_client
):
    row = scenarios.long_outage(ctx, submissions=150, doomed=40)
    record(request, row)
    assert row.notes["failed_after_hours"] >= 24
    # and support finds the failed ones in the list
    page = superuser_client.get(
        reverse("admin:integrations_submission_changelist") + "?status__exact=failed"
    ).content.decode()
    assert "40 submissions" in page or "40 results" in page


@pytest.fixture
def superuser_client(db) -> Client:
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw-123456!")
    client = Client()
    client.force_login(user)
    return client


class DatabaseDown:
    """A connection wrapper that fails every statement (or only some) like a lost database."""

    def __init__(self, only: str = "") -> None:
        self.only = only
        self.refused = 0

    def __call__(self, execute, sql, params, many, context):
        if not self.only or self.only in sql:
            self.refused += 1
            raise OperationalError("server closed the connection unexpectedly")
        return execute(sql, params, many, context)


@pytest.mark.django_db
def test_database_down_during_intake_answers_503_and_leaves_nothing_half_written(
    make_hub, sandbox, request
):
    # given
    hub, token = make_hub(endpoint=sandbox.url)
    client = Client()
    payloads = [komo_entry(email=f"db{index}@example.com") for index in range(6)]

    def post(payload: dict):
        return client.post(f"/api/v1/hubs/{hub.slug}/submissions", data=json.dumps(payload),
                           content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")

    assert post(payloads[0]).status_code == 202
    # when the database is gone entirely, then when only the INSERT fails
    answers = []
    for down in (DatabaseDown(), DatabaseDown(only="INSERT INTO")):
        with connection.execute_wrapper(down):
            answers += [post(payloads[1]), post(payloads[2])]
    # then every answer was a 503 with Retry-After, and nothing of them was stored
    assert [r.status_code for r in answers] == [503] * 4
    assert all(int(r["Retry-After"]) > 0 for r in answers)
    assert all("retry" in r.json()["detail"] for r in answers)
    assert Submission.objects.count() == 1
    # and when it is back, intake (the sender's retries) and delivery continue
    statuses = [post(payload).status_code for payload in payloads]
    assert statuses == [200, 202, 202, 202, 202, 202]
    from integrations.services.delivery import delivery_run

    delivery_run(hub_id=hub.pk)
    assert Submission.objects.filter(status=SubmissionStatus.DELIVERED).count() == 6
    figures_record(request.config, "faults-database-down-in-process",
                   {"refused_503": 4, "stored_after_recovery": 6, "5xx_other": 0})

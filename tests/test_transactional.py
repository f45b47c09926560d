"""Braze transactional emails for Komo moments, against the sandbox over real HTTP: enqueued for
delivered submissions, sent once, retried without ever sending twice, shown to support."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from integrations.models import (
    BrazeConnection,
    ConnectionStatus,
    Hub,
    Submission,
    SubmissionStatus,
    TransactionalSend,
    TransactionalStatus,
)
from integrations.services.braze_api import braze_client
from integrations.services.delivery import delivery_run
from integrations.services.hubs import submissions_redeliver
from integrations.services.intake import submission_receive
from integrations.services.sweep import sweep_due
from integrations.services.transactional import (
    DEDUP_SAFE_SECONDS,
    external_send_id_for,
    transactional_deliver,
    transactional_enqueue,
)
from integrations.tasks import deliver_transactional
from tests.conftest import FORBIDDEN_KEY, komo_entry

pytestmark = pytest.mark.django_db

CAMPAIGN = "prize-email"
PRIYA = {"alias_name": "priya.natarajan@example.com", "alias_label": "email"}


@pytest.fixture(autouse=True)
def _fresh_client_and_cache():
    from django.core.cache import cache

    cache.clear()
    braze_client.cache_clear()
    yield
    braze_client.cache_clear()


@pytest.fixture
def prize_hub(make_hub, sandbox) -> Hub:
    hub, _ = make_hub(
        endpoint=sandbox.url,
        events=["CompetitionEntrySuccess", "PrizeAwarded"],
        transactional={"PrizeAwarded": {"campaign_id": CAMPAIGN}},
    )
    return hub


def prize(**changes: Any) -> dict[str, Any]:
    return komo_entry(
        event="PrizeAwarded",
        email="Priya.Natarajan@example.com",
        prize_id="5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d",
        prize_name="First Prize",
        **changes,
    )


def delivered_prize(hub: Hub, **changes: Any) -> Submission:
    submission = submission_receive(hub=hub, payload=prize(**changes)).submission
    delivery_run(hub_id=hub.pk)
    submission.refresh_from_db()
    assert submission.status == SubmissionStatus.DELIVERED
    return submission


def make_due() -> None:
    TransactionalSend.objects.filter(status=TransactionalStatus.PENDING).update(
        next_attempt_at=timezone.now()
    )


def wait_for_sends(sandbox, count: int, seconds: float = 5.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + seconds
    while len(sandbox.sends()) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return sandbox.sends()


# --- enqueue and send -------------------------------------------------------------------------


def test_a_delivered_prize_sends_its_email_through_braze(prize_hub, sandbox):
    # given: delivery enqueued the email when Braze accepted the submission
    submission = delivered_prize(prize_hub)
    [row] = TransactionalSend.objects.all()
    assert (row.submission_id, row.status) == (submission.pk, TransactionalStatus.PENDING)

    # when
    report = transactional_deliver(hub_id=prize_hub.pk)

    # then
    assert report.sent == 1
    [send] = sandbox.sends()
    assert send["campaign_id"] == CAMPAIGN
    assert send["recipient"]["user_alias"] == PRIYA
    assert send["recipient"]["attributes"]["email"] == "priya.natarajan@example.com"
    assert send["trigger_properties"]["prize_name"] == "First Prize"
    assert send["external_send_id"] == row.external_send_id
    row.refresh_from_db()
    assert row.status == TransactionalStatus.SENT
    assert row.dispatch_id == send["dispatch_id"]
    assert row.status_code == 201
    assert row.sent_at is not None


def test_only_moments_with_a_campaign_send_email(prize_hub, sandbox):
    submission_receive(hub=prize_hub, payload=komo_entry())

    delivery_run(hub_id=prize_hub.pk)

    assert not TransactionalSend.objects.exists()


def test_external_send_id_is_derived_from_hub_komo_id_and_campaign():
    send_id = external_send_id_for(hub_id=1, komo_id="abc", campaign_id="c1")

    assert send_id == external_send_id_for(hub_id=1, komo_id="abc", campaign_id="c1")
    assert re.fullmatch(r"[a-zA-Z0-9-_+/=]+", send_id)
    assert len(send_id) <= 200
    others = {
        external_send_id_for(hub_id=2, komo_id="abc", campaign_id="c1"),
        external_send_id_for(hub_id=1, komo_id="abd", campaign_id="c1"),
        external_send_id_for(hub_id=1, komo_id="abc", campaign_id="c2"),
    }
    assert send_id not in others
    assert len(others) == 3


# --- never twice ------------------------------------------------------------------------------


def test_a_timed_out_send_is_retried_without_a_second_email(prize_hub, sandbox, settings):
    # given: Braze gets the first request but answers too late
    submission = delivered_prize(prize_hub)
    settings.BRAZE_TIMEOUT_SECONDS = 0.3
    braze_client.cache_clear()
    sandbox.configure(latency_ms=1200)

    # when: the first attempt times out
    first = transactional_deliver(hub_id=prize_hub.pk)

    # then: it is waiting for a retry, and Braze did send the email
    assert first.retried == 1
    row = TransactionalSend.objects.get(submission=submission)
    assert (row.status, row.attempts, row.status_code) == (TransactionalStatus.PENDING, 1, None)
    assert "external_send_id" in row.status_reason
    [send] = wait_for_sends(sandbox, 1)

    # when: the retry reaches Braze in time
    sandbox.configure(latency_ms=0)
    make_due()
    second = transactional_deliver(hub_id=prize_hub.pk)

    # then: Braze recognised the external_send_id; still one email, the same dispatch
    assert second.sent == 1
    assert len(sandbox.sends()) == 1
    row.refresh_from_db()
    assert row.status == TransactionalStatus.SENT
    assert row.attempts == 2
    assert row.dispatch_id == send["dispatch_id"]


def test_resending_a_sent_row_does_not_send_again(prize_hub, sandbox):
    # given
    delivered_prize(prize_hub)
    transactional_deliver(hub_id=prize_hub.pk)
    [send] = sandbox.sends()

    # when: the row is sent again (e.g. a worker lost its lease after sending)
    TransactionalSend.objects.update(status=TransactionalStatus.PENDING)
    make_due()
    transactional_deliver(hub_id=prize_hub.pk)

    # then
    assert len(sandbox.sends()) == 1
    assert TransactionalSend.objects.get().dispatch_id == send["dispatch_id"]


def test_redelivering_the_submission_creates_no_second_email(prize_hub, sandbox):
    # given
    submission = delivered_prize(prize_hub)
    transactional_deliver(hub_id=prize_hub.pk)

    # when
    submissions_redeliver(pks=[submission.pk])
    delivery_run(hub_id=prize_hub.pk)
    transactional_deliver(hub_id=prize_hub.pk)

    # then
    assert TransactionalSend.objects.count() == 1
    assert len(sandbox.sends()) == 1
    assert transactional_enqueue(hub=prize_hub, submission_ids=[submission.pk]) == 0


def test_no_retry_once_braze_would_no_longer_recognise_the_send(prize_hub, sandbox):
    # given: a row first tried almost 23 hours ago
    delivered_prize(prize_hub)
    TransactionalSend.objects.update(
        created_at=timezone.now() - timedelta(seconds=DEDUP_SAFE_SECONDS - 5)
    )
    sandbox.configure(status_next=[503])

    # when
    report = transactional_deliver(hub_id=prize_hub.pk)

    # then
    row = TransactionalSend.objects.get()
    assert report.failed == 1
    assert row.status == TransactionalStatus.FAILED
    assert "24-hour" in row.status_reason
    assert sandbox.sends() == []


# --- other answers ----------------------------------------------------------------------------


def test_a_server_error_is_retried_with_backoff(prize_hub, sandbox):
    # given
    delivered_prize(prize_hub)
    sandbox.configure(status_next=[503])
    before = timezone.now()

    # when
    transactional_deliver(hub_id=prize_hub.pk)

    # then
    row = TransactionalSend.objects.get()
    assert (row.status, row.attempts, row.status_code) == (TransactionalStatus.PENDING, 1, 503)
    assert row.next_attempt_at >= before + timedelta(seconds=7)
    make_due()
    transactional_deliver(hub_id=prize_hub.pk)
    row.refresh_from_db()
    assert row.status == TransactionalStatus.SENT
    assert len(sandbox.sends()) == 1


def test_a_refused_request_fails_with_the_reason(prize_hub, sandbox):
    delivered_prize(prize_hub)
    sandbox.configure(status_next=[400])

    transactional_deliver(hub_id=prize_hub.pk)

    row = TransactionalSend.objects.get()
    assert row.status == TransactionalStatus.FAILED
    assert "400" in row.status_reason
    assert row.next_attempt_at is None


def test_a_key_without_transactional_permission_does_not_pause_tracking(prize_hub, sandbox):
    # given: the key may track users but not send transactional emails
    delivered_prize(prize_hub)
    connection = BrazeConnection.objects.get(hub=prize_hub)
    connection.set_api_key(FORBIDDEN_KEY)
    connection.save()

    # when
    transactional_deliver(hub_id=prize_hub.pk)

    # then
    row = TransactionalSend.objects.get()
    connection.refresh_from_db()
    assert row.status == TransactionalStatus.PENDING
    assert "transactional.send" in row.status_reason
    assert connection.status != ConnectionStatus.PAUSED


def test_a_paused_connection_keeps_emails_waiting_without_an_attempt(prize_hub, sandbox):
    delivered_prize(prize_hub)
    BrazeConnection.objects.filter(hub=prize_hub).update(status=ConnectionStatus.PAUSED)

    report = transactional_deliver(hub_id=prize_hub.pk)

    row = TransactionalSend.objects.get()
    assert report.waiting
    assert (row.status, row.attempts) == (TransactionalStatus.PENDING, 0)
    assert sandbox.sends() == []


def test_an_identity_braze_cannot_address_is_recorded_as_failed(make_hub, sandbox):
    # given: a hub identified by Braze's email identifier (validation refuses transactional emails
    # for it; this one was changed behind the validation's back)
    hub, _ = make_hub(
        endpoint=sandbox.url,
        identity={"type": "email", "field": "email"},
        mappings=[{"field": "first_name", "attribute": "first_name"}],
        events=["PrizeAwarded"],
    )
    Hub.objects.filter(pk=hub.pk).update(transactional={"PrizeAwarded": {"campaign_id": CAMPAIGN}})
    hub.refresh_from_db()

    # when
    delivered_prize(hub)

    # then
    row = TransactionalSend.objects.get()
    assert row.status == TransactionalStatus.FAILED
    assert "external ID or user alias" in row.status_reason
    assert transactional_deliver(hub_id=hub.pk).sent == 0


# --- triggers ---------------------------------------------------------------------------------


def test_delivery_triggers_the_send_after_its_commit(
    prize_hub, sandbox, django_capture_on_commit_callbacks
):
    submission_receive(hub=prize_hub, payload=prize())

    with django_capture_on_commit_callbacks(execute=True):
        delivery_run(hub_id=prize_hub.pk)

    assert len(sandbox.sends()) == 1
    assert TransactionalSend.objects.get().status == TransactionalStatus.SENT


def test_the_sweep_sends_what_a_lost_task_left_behind(prize_hub, sandbox):
    # given: a due row whose task never ran
    delivered_prize(prize_hub)

    # when
    sweep_due()

    # then (django-q2 runs tasks synchronously in the test settings)
    assert len(sandbox.sends()) == 1


def test_the_task_reports_what_it_did(prize_hub, sandbox):
    delivered_prize(prize_hub)

    assert deliver_transactional(prize_hub.pk) == {
        "sent": 1,
        "retried": 0,
        "failed": 0,
        "waiting": False,
    }


# --- support ----------------------------------------------------------------------------------


def test_support_sees_the_email_on_the_submission_page(prize_hub, sandbox, client):
    # given
    submission = delivered_prize(prize_hub)
    transactional_deliver(hub_id=prize_hub.pk)
    row = TransactionalSend.objects.get()
    client.force_login(
        get_user_model().objects.create_superuser(username="support", password="pw-Secret-123")
    )

    # when
    page = client.get(reverse("integrations:submission_detail", args=[submission.public_id]))
    admin = client.get(reverse("admin:integrations_submission_change", args=[submission.pk]))

    # then
    for response in (page, admin):
        html = response.content.decode()
        assert response.status_code == 200
        assert "Transactional emails" in html
        assert CAMPAIGN in html
        assert row.dispatch_id in html
        assert row.external_send_id in html


def test_a_switched_off_hub_sends_no_email(prize_hub, sandbox):
    delivered_prize(prize_hub)
    Hub.objects.filter(pk=prize_hub.pk).update(active=False)

    report = transactional_deliver(hub_id=prize_hub.pk)
    sweep_due()

    assert report.waiting
    assert sandbox.sends() == []
    assert TransactionalSend.objects.get().attempts == 0

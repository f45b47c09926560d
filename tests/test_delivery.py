"""Delivery against the Braze sandbox over real HTTP: batching, item errors, 429, 5xx, 401/403,
timeouts, dropped connections, holds and the end of the retry window."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from integrations.models import (
    AttemptItem,
    ConnectionStatus,
    DeliveryAttempt,
    FieldMapping,
    ItemResult,
    Submission,
    SubmissionStatus,
)
from integrations.retry import RETRY_DELAYS_SECONDS
from integrations.services.braze_api import braze_client
from integrations.services.delivery import delivery_run
from integrations.services.intake import submission_receive
from tests.conftest import FORBIDDEN_KEY, komo_entry

pytestmark = pytest.mark.django_db


def queue(hub, count: int, **overrides) -> list[Submission]:
    return [
        submission_receive(
            hub=hub, payload=komo_entry(email=f"person{i}@example.com", **overrides)
        ).submission
        for i in range(count)
    ]


def make_due() -> None:
    Submission.objects.filter(status=SubmissionStatus.PENDING).update(
        next_attempt_at=timezone.now()
    )


@pytest.fixture(autouse=True)
def _fresh_client_and_budget():
    from django.core.cache import cache

    cache.clear()
    braze_client.cache_clear()
    yield
    braze_client.cache_clear()


def test_200_queued_submissions_go_out_in_at_most_3_requests(sandbox_hub, sandbox):
    # given
    hub, _ = sandbox_hub
    queue(hub, 200)
    # when
    report = delivery_run(hub_id=hub.pk)
    # then
    assert report.requests <= 3
    assert len(sandbox.requests()) == report.requests
    assert Submission.objects.filter(status=SubmissionStatus.DELIVERED).count() == 200
    assert all(len(r["body"]["attributes"]) <= 75 for r in sandbox.requests())
    assert len(sandbox.profiles()) == 200


def test_delivered_profile_has_the_mapped_attributes(sandbox_hub, sandbox):
    hub, _ = sandbox_hub
    submission_receive(hub=hub, payload=komo_entry(email="Priya.Natarajan@Example.com"))
    delivery_run(hub_id=hub.pk)
    [profile] = sandbox.profiles()
    assert profile["attributes"]["first_name"] == "Priya"
    assert profile["attributes"]["phone"] == "+61412555019"
    assert profile["attributes"]["dob"] == "1988-07-02"
    assert profile["attributes"]["email"] == "priya.natarajan@example.com"
    assert profile["attributes"]["email_subscribe"] == "opted_in"
    attempt = DeliveryAttempt.objects.get()
    assert attempt.status_code == 201
    assert attempt.request_body["attributes"][0]["user_alias"] == {
        "alias_name": "priya.natarajan@example.com",
        "alias_label": "email",
    }


def test_per_item_errors_fail_only_their_own_submission(sandbox_hub, sandbox):
    # given: a hub whose dob mapping was (mis)configured as plain text in the database
    hub, _ = sandbox_hub
    FieldMapping.objects.filter(hub=hub, attribute="dob").update(value_type="string")
    good = queue(hub, 3)
    bad = submission_receive(hub=hub, payload=komo_entry(birthday="02/07/1988")).submission
    # when
    delivery_run(hub_id=hub.pk)
    # then
    bad.refresh_from_db()
    assert bad.status == SubmissionStatus.FAILED
    assert "dob" in bad.status_reason or "attributes[3]" in bad.status_reason
    assert (
        Submission.objects.filter(
            pk__in=[s.pk for s in good], status=SubmissionStatus.DELIVERED
        ).count()
        == 3
    )
    assert AttemptItem.objects.get(submission=bad).result == ItemResult.FAILED


def test_429_waits_for_the_reset_without_using_a_retry(sandbox_hub, sandbox):
    # given
    hub, _ = sandbox_hub
    sandbox.configure(status_next=[429])
    [submission] = queue(hub, 1)
    # when
    delivery_run(hub_id=hub.pk)
    # then
    submission.refresh_from_db()
    assert submission.status == SubmissionStatus.PENDING
    assert submission.attempts == 0
    reset = sandbox.requests()[-1]["response_headers"]["X-RateLimit-Reset"]
    assert submission.next_attempt_at.timestamp() >= int(reset) - 1
    assert DeliveryAttempt.objects.get().outcome == "rate_limited"
    # and when the window has passed
    from django.core.cache import cache

    cache.clear()
    make_due()
    delivery_run(hub_id=hub.pk)
    submission.refresh_from_db()
    assert submission.status == SubmissionStatus.DELIVERED


def test_5xx_is_retried_with_backoff_then_succeeds(sandbox_hub, sandbox):
    hub, _ = sandbox_hub
    sandbox.configure(fail_next=1)
    [submission] = queue(hub, 1)
    before = timezone.now()
    delivery_run(hub_id=hub.pk)
    submission.refresh_from_db()
    assert submission.status == SubmissionStatus.PENDING
    assert submission.attempts == 1
    delay = (submission.next_attempt_at - before).total_seconds()
    assert RETRY_DELAYS_SECONDS[0] * 0.8 - 1 <= delay <= RETRY_DELAYS_SECONDS[0] * 1.2 + 1
    assert "server error" in submission.status_reason
    make_due()
    delivery_run(hub_id=hub.pk)
    submission.refresh_from_db()
    assert submission.status == SubmissionStatus.DELIVERED
    assert submission.attempts == 2
    assert [a.status_code for a in DeliveryAttempt.objects.order_by("id")] == [500, 201]


def test_retries_end_in_failed_after_the_whole_window(sandbox_hub, sandbox):
    hub, _ = sandbox_hub
    [submission] = queue(hub, 1)
    Submission.objects.filter(pk=submission.pk).update(attempts=len(RETRY_DELAYS_SECONDS))
    sandbox.configure(fail_next=1)
    delivery_run(hub_id=hub.pk)
    submission.refresh_from_db()
    assert submission.status == SubmissionStatus.FAILED
    assert sum(RETRY_DELAYS_SECONDS) >= 24 * 3600


def test_401_pauses_the_connection_and_keeps_submissions_waiting(make_hub, sandbox):
    # given
    hub, _ = make_hub(endpoint=sandbox.url, api_key="wrong-key-1234")
    queue(hub, 5)
    # when
    delivery_run(hub_id=hub.pk)
    delivery_run(hub_id=hub.pk)
    # then: one request, no retry storm, nothing failed
    assert len(sandbox.requests()) == 1
    hub.connection.refresh_from_db()
    assert hub.connection.status == ConnectionStatus.PAUSED
    assert "401" in hub.connection.status_reason
    assert Submission.objects.filter(status=SubmissionStatus.PENDING, attempts=0).count() == 5
    assert set(AttemptItem.objects.values_list("result", flat=True)) == {ItemResult.WAITING}
    # and when a person fixes the key, delivery resumes
    from integrations.services.hubs import hub_config_export, hub_config_import
    from tests.conftest import DEMO_KEY

    config = hub_config_export(hub)
    config["braze"]["api_key"] = DEMO_KEY
    hub_config_import(config=config)
    delivery_run(hub_id=hub.pk)
    assert Submission.objects.filter(status=SubmissionStatus.DELIVERED).count() == 5


def test_403_pauses_with_a_permission_explanation(make_hub, sandbox):
    hub, _ = make_hub(endpoint=sandbox.url, api_key=FORBIDDEN_KEY)
    queue(hub, 2)
    delivery_run(hub_id=hub.pk)
    hub.connection.refresh_from_db()
    assert hub.connection.status == ConnectionStatus.PAUSED
    assert "users.track" in hub.connection.status_reason
    assert Submission.objects.filter(status=SubmissionStatus.PENDING).count() == 2


def test_timeout_is_retried(sandbox_hub, sandbox, settings):
    settings.BRAZE_TIMEOUT_SECONDS = 0.3
    braze_client.cache_clear()
    hub, _ = sandbox_hub
    sandbox.configure(latency_ms=1500)
    [submission] = queue(hub, 1)
    delivery_run(hub_id=hub.pk)
    submission.refresh_from_db()
    assert submission.status == SubmissionStatus.PENDING
    assert submission.attempts == 1
    assert DeliveryAttempt.objects.get().outcome == "timeout"


def test_dropped_connection_is_retried(sandbox_hub, sandbox):
    hub, _ = sandbox_hub
    sandbox.configure(drop_next=1)
    [submission] = queue(hub, 1)
    delivery_run(hub_id=hub.pk)
    submission.refresh_from_db()
    assert submission.attempts == 1
    assert DeliveryAttempt.objects.get().outcome == "connection_error"
    make_due()
    delivery_run(hub_id=hub.pk)
    submission.refresh_from_db()
    assert submission.status == SubmissionStatus.DELIVERED


def test_missing_identity_is_held_and_never_sent(sandbox_hub, sandbox):
    hub, _ = sandbox_hub
    submission = submission_receive(hub=hub, payload=komo_entry(email="")).submission
    delivery_run(hub_id=hub.pk)
    submission.refresh_from_db()
    assert submission.status == SubmissionStatus.HELD
    assert "email" in submission.status_reason
    assert sandbox.requests() == []


def test_spent_rate_budget_postpones_without_a_request(sandbox_hub, sandbox):
    from integrations.services import rate_budget

    hub, _ = sandbox_hub
    [submission] = queue(hub, 1)
    reset = int(timezone.now().timestamp()) + 30
    rate_budget.budget_record(
        fingerprint=hub.connection.api_key_fingerprint, remaining=0, reset=reset
    )
    delivery_run(hub_id=hub.pk)
    submission.refresh_from_db()
    assert sandbox.requests() == []
    assert submission.next_attempt_at > timezone.now() + timedelta(seconds=20)
    assert submission.attempts == 0


def test_inactive_hub_keeps_submissions_pending(sandbox_hub, sandbox):
    hub, _ = sandbox_hub
    hub.active = False
    hub.save()
    queue(hub, 2)
    delivery_run(hub_id=hub.pk)
    assert sandbox.requests() == []
    assert Submission.objects.filter(status=SubmissionStatus.PENDING).count() == 2


def test_attempt_never_records_the_api_key(sandbox_hub, sandbox):
    from tests.conftest import DEMO_KEY

    hub, _ = sandbox_hub
    queue(hub, 1)
    delivery_run(hub_id=hub.pk)
    attempt = DeliveryAttempt.objects.get()
    assert DEMO_KEY not in str(attempt.request_body) + attempt.response_body + attempt.message


def test_a_lease_that_ran_out_is_claimed_again(sandbox_hub, sandbox):
    from integrations.services.delivery import submissions_claim

    hub, _ = sandbox_hub
    queue(hub, 3)
    first, _ = submissions_claim(hub_id=hub.pk, limit=75)
    second, _ = submissions_claim(hub_id=hub.pk, limit=75)
    assert (len(first), len(second)) == (3, 0)
    Submission.objects.update(claimed_until=timezone.now() - timedelta(seconds=1))
    third, _ = submissions_claim(hub_id=hub.pk, limit=75)
    assert len(third) == 3


@pytest.mark.parametrize(("status", "words"), [(400, "invalid (400)"), (413, "larger than")])
def test_400_and_413_fail_permanently_with_the_reason(sandbox_hub, sandbox, status, words):
    # given
    hub, _ = sandbox_hub
    sandbox.configure(status_next=[status])
    [submission] = queue(hub, 1)
    # when
    delivery_run(hub_id=hub.pk)
    # then
    submission.refresh_from_db()
    assert submission.status == SubmissionStatus.FAILED
    assert words in submission.status_reason
    assert f"HTTP {status}" in submission.status_reason
    assert submission.next_attempt_at is None

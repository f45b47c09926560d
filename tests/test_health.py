"""Honest health: each cause turns the badge, in one sentence with a link; network failures are
ours; stored reasons and change summaries are codes, worded in the reader's language."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation

from integrations.braze.client import Outcome, TrackResult
from integrations.change_words import change_lines
from integrations.explain import network_failure, outcome_explain
from integrations.mapping import map_submission
from integrations.models import (
    AttemptItem,
    BrazeConnection,
    ConnectionStatus,
    DeliveryAttempt,
    HubMembership,
    HubRole,
    Submission,
    SubmissionStatus,
)
from integrations.reasons import message_parts, message_text, reason, reason_text
from integrations.selectors import hub_health, hubs_health
from integrations.services.braze_api import braze_client
from integrations.services.delivery import delivery_run
from integrations.services.hubs import submissions_redeliver
from integrations.services.intake import submission_receive
from tests.conftest import komo_entry

pytestmark = pytest.mark.django_db

OLD_DNS_MESSAGE = (
    "Connection error: HTTPSConnectionPool(host='rest.iad-99.braze.com', port=443): Max retries "
    "exceeded (Caused by NameResolutionError(\"<urllib3.connection.HTTPSConnection object>: "
    "Failed to resolve 'rest.iad-99.braze.com' ([Errno -2] Name or service not known)\"))"
)


@pytest.fixture(autouse=True)
def _fresh_client():
    from django.core.cache import cache

    cache.clear()
    braze_client.cache_clear()
    yield
    braze_client.cache_clear()


@pytest.fixture
def fake_braze(monkeypatch):
    class Fake:
        result = TrackResult(status_code=201, outcome=Outcome.SUCCESS, message="success")
        calls = 0

        def track(self, *, endpoint, api_key, body):
            Fake.calls += 1
            return self.result

    fake = Fake()
    monkeypatch.setattr("integrations.services.braze_api.braze_client", lambda: fake)
    return fake


def worked(hub) -> None:
    BrazeConnection.objects.filter(hub=hub).update(status=ConnectionStatus.OK,
                                                   last_success_at=timezone.now())
    hub.refresh_from_db()


def health_of(hub):
    hub = type(hub).objects.select_related("connection").get(pk=hub.pk)
    return hub_health(hub=hub)


def codes(health) -> list[str]:
    return [cause.code for cause in health.causes]


# --- network failures are ours ----------------------------------------------------------------


@pytest.mark.parametrize(("message", "words"), [
    (OLD_DNS_MESSAGE, "does not resolve"),
    ("Name not found: [Errno -2] Name or service not known", "does not resolve"),
    ("Connection refused: [Errno 111] Connection refused", "refused our connection"),
    ("TLS error: certificate verify failed", "secure (TLS) connection"),
    ("Connect timeout: timed out", "connection timeout"),
])
def test_network_failures_are_described_as_ours_never_as_braze_said(message, words):
    # when
    text = outcome_explain("connection_error" if "timeout" not in message else "timeout",
                           status_code=None, message=message)
    # then
    assert words in text
    assert "Braze said" not in text and "HTTPSConnection" not in text


def test_a_dns_failure_is_classified_from_old_and_new_messages():
    assert network_failure(OLD_DNS_MESSAGE) == "name_not_found"
    assert network_failure("Name not found: whatever") == "name_not_found"


def test_braze_own_answers_are_still_quoted():
    text = outcome_explain("unauthorized", status_code=401, message="Invalid API key: x")
    assert "Braze said" in text and "HTTP 401" in text


# --- reasons as codes -------------------------------------------------------------------------


def test_a_stored_reason_is_worded_in_the_readers_language():
    # given
    stored = reason("braze", outcome="unauthorized", status_code=401, message="Invalid API key")
    # when
    english = reason_text(stored)
    with translation.override("de"):
        german = reason_text(stored)
    with translation.override("ja"):
        japanese = reason_text(stored)
    # then
    assert "API key" in english
    assert german != english and japanese != english and japanese != german


def test_old_rows_without_a_code_keep_their_text():
    assert reason_text(None, "gave up") == "gave up"


def test_a_mapping_problem_is_stored_as_its_msgid_and_worded_again(make_hub):
    # given a submission without its identity, mapped (and stored) in English
    hub, _token = make_hub()
    problem = map_submission(hub.to_spec(), komo_entry(email="")).problems[0]
    english = str(problem.message)
    # when
    parts = message_parts(problem.message)
    # then: the same sentence in English, the German one in German
    assert parts["format"]["msgid"].startswith("The identity field")
    assert message_text(parts) == english
    with translation.override("de"):
        assert message_text(parts) != english
        assert "email" in message_text(parts)


def test_a_held_submission_shows_its_reason_in_german(make_hub, fake_braze):
    # given
    hub, _token = make_hub()
    submission = submission_receive(hub=hub, payload=komo_entry(email="")).submission
    delivery_run(hub_id=hub.pk)
    submission.refresh_from_db()
    assert submission.status == SubmissionStatus.HELD
    # when
    english = submission.reason_shown
    with translation.override("de"):
        german = submission.reason_shown
    # then
    assert english == submission.status_reason  # the English copy kept for search and logs
    assert german != english


def test_a_change_reads_as_field_before_after_in_words():
    # when
    lines = change_lines({"name": ["Summer", "Winter"], "active": [False, True],
                          "default_phone_region": [None, "AU"], "braze.api_key": "changed",
                          "mappings": [[{"field": "email", "attribute": "email", "type": "email"}],
                                       []]})
    # then
    assert "Name: Summer → Winter" in lines
    assert "Active: no → yes" in lines
    assert "Default phone region: (not set) → AU" in lines
    assert "Braze API key: changed" in lines
    assert "Field mappings: removed email → email (email)" in lines
    assert not any("null" in line or "None" in line for line in lines)


def test_token_summary_is_translated_when_shown(make_hub):
    # given
    hub, _token = make_hub()
    change = hub.changes.filter(action="token-issued").get()
    # when
    english = change.summary_shown
    with translation.override("ja"):
        japanese = change.summary_shown
    # then
    assert english.startswith("ingest token …")
    assert japanese != english


# --- health causes ----------------------------------------------------------------------------


def test_a_hub_that_was_never_tested_is_not_ok(make_hub):
    hub, _token = make_hub()
    health = health_of(hub)
    assert health.level == "warning"
    assert codes(health) == ["never_succeeded"]


def test_a_quiet_hub_whose_connection_worked_is_ok(make_hub):
    hub, _token = make_hub()
    worked(hub)
    assert health_of(hub).level == "ok"


def test_a_paused_connection_is_a_problem_with_its_reason(make_hub, fake_braze):
    # given Braze refuses the key
    hub, _token = make_hub()
    fake_braze.result = TrackResult(status_code=401, outcome=Outcome.UNAUTHORIZED,
                                    message="Invalid API key")
    submission_receive(hub=hub, payload=komo_entry())
    # when
    delivery_run(hub_id=hub.pk)
    health = health_of(hub)
    # then
    assert health.level == "error"
    assert codes(health)[0] == "paused"
    from integrations.health import cause_sentence

    assert "refused the API key" in cause_sentence(health.causes[0])


def test_submissions_waiting_for_a_retry_after_a_dns_failure_turn_the_badge(make_hub, fake_braze):
    # given the host cannot be resolved
    hub, _token = make_hub()
    worked(hub)
    fake_braze.result = TrackResult(status_code=None, outcome=Outcome.CONNECTION_ERROR,
                                    message="Name not found: [Errno -2] Name or service not known")
    submission_receive(hub=hub, payload=komo_entry())
    # when
    delivery_run(hub_id=hub.pk)
    health = health_of(hub)
    # then
    assert health.level == "warning"
    assert "retrying" in codes(health)
    from integrations.health import cause_sentence

    sentence = cause_sentence(next(c for c in health.causes if c.code == "retrying"))
    assert "does not resolve" in sentence and "Braze said" not in sentence


def test_a_backlog_older_than_15_minutes_is_a_problem(make_hub):
    # given a submission due 20 minutes ago, not delivered
    hub, _token = make_hub()
    worked(hub)
    submission = submission_receive(hub=hub, payload=komo_entry()).submission
    Submission.objects.filter(pk=submission.pk).update(
        next_attempt_at=timezone.now() - timedelta(minutes=20))
    # when
    health = health_of(hub)
    # then
    assert health.level == "error"
    assert "backlog" in codes(health)


@pytest.mark.parametrize(("failed", "expected"), [(4, None), (30, "warning"), (60, "error")])
def test_a_rising_share_of_held_or_failed_submissions(make_hub, failed, expected):
    # given 100 clean submissions three hours ago, then 100 recent ones of which some failed
    hub, _token = make_hub()
    worked(hub)
    now = timezone.now()
    rows = [Submission(hub=hub, komo_id=f"old-{i}", event="CompetitionEntrySuccess", payload={},
                       status=SubmissionStatus.DELIVERED, delivered_at=now,
                       received_at=now - timedelta(hours=3, seconds=i)) for i in range(100)]
    rows += [Submission(hub=hub, komo_id=f"new-{i}", event="CompetitionEntrySuccess", payload={},
                        status=SubmissionStatus.FAILED if i < failed
                        else SubmissionStatus.DELIVERED,
                        delivered_at=now, received_at=now - timedelta(seconds=i))
             for i in range(100)]
    Submission.objects.bulk_create(rows)
    # when
    health = health_of(hub)
    # then
    share = [c for c in health.causes if c.code == "problem_share"]
    if expected is None:
        assert not share
    else:
        assert share[0].level == expected
        assert share[0].params == {"percent": failed, "earlier": 0, "sample": 100}


def test_an_active_hub_silent_for_a_day_after_daily_submissions_warns(make_hub):
    # given one submission on each of the three days before yesterday... and none today
    hub, _token = make_hub()
    worked(hub)
    now = timezone.now()
    Submission.objects.bulk_create(
        Submission(hub=hub, komo_id=f"day-{day}", event="CompetitionEntrySuccess", payload={},
                   status=SubmissionStatus.DELIVERED, delivered_at=now,
                   received_at=now - timedelta(days=day, hours=2)) for day in (1, 2, 3))
    # when / then
    assert "silent" in codes(health_of(hub))
    hub.active = False
    hub.save()
    assert "silent" not in codes(health_of(hub))


def test_health_of_many_hubs_is_one_statement_plus_their_attempts(make_hub):
    # given
    hubs = [make_hub(slug=f"hub-{i}")[0] for i in range(4)]
    loaded = list(type(hubs[0]).objects.select_related("connection").filter(
        pk__in=[h.pk for h in hubs]))
    # when
    with CaptureQueriesContext(connection) as queries:
        hubs_health(hubs=loaded)
    # then
    assert len(queries) == 1  # no attempt yet: the second statement is skipped
    assert "COUNT(*) FROM (SELECT" in queries[0]["sql"]


# --- pages ------------------------------------------------------------------------------------


def login_editor(client, hub):
    user = get_user_model().objects.create_user(username="ed", password="pw-Secret-123",
                                                is_staff=True, email="ed@example.com")
    HubMembership.objects.create(user=user, hub=hub, role=HubRole.EDITOR)
    client.force_login(user)
    return user


def test_hub_list_and_dashboard_say_problem_with_the_cause_and_a_fix(client, make_hub,
                                                                      fake_braze):
    # given
    hub, _token = make_hub()
    fake_braze.result = TrackResult(status_code=401, outcome=Outcome.UNAUTHORIZED,
                                    message="Invalid API key")
    submission_receive(hub=hub, payload=komo_entry())
    delivery_run(hub_id=hub.pk)
    login_editor(client, hub)
    fix = reverse("integrations:hub_edit_connection", args=[hub.slug])
    # when
    listing = client.get(reverse("integrations:hub_list")).content.decode()
    dashboard = client.get(reverse("integrations:hub_dashboard", args=[hub.slug])
                           ).content.decode()
    # then
    for html in (listing, dashboard):
        assert 'class="badge badge--error">Problem' in html
        assert "Delivery is paused" in html and fix in html
        assert "Everything is flowing" not in html


def test_attempt_counts_survive_a_redelivery_and_the_reason_is_shown_once(client, make_hub,
                                                                            fake_braze):
    # given a submission that failed once, redelivered, then delivered
    hub, _token = make_hub()
    fake_braze.result = TrackResult(status_code=400, outcome=Outcome.BAD_REQUEST,
                                    message="Invalid attributes", duration_ms=1.8695689999503884)
    submission = submission_receive(hub=hub, payload=komo_entry()).submission
    delivery_run(hub_id=hub.pk)
    submission.refresh_from_db()
    assert submission.status == SubmissionStatus.FAILED
    submissions_redeliver(pks=[submission.pk])
    fake_braze.result = TrackResult(status_code=201, outcome=Outcome.SUCCESS, message="success",
                                    duration_ms=12.3456)
    delivery_run(hub_id=hub.pk)
    submission.refresh_from_db()
    login_editor(client, hub)
    # when
    html = client.get(reverse("integrations:submission_detail", args=[submission.public_id])
                      ).content.decode()
    # then
    assert submission.attempts == 2 == AttemptItem.objects.filter(submission=submission).count()
    assert DeliveryAttempt.objects.count() == 2
    assert '<dd data-testid="attempts">2</dd>' in html
    assert html.count("Braze refused the request as invalid (400)") == 1
    assert "1.869" not in html and "2 ms" in html


def test_a_transactional_send_reason_is_worded_in_the_readers_language():
    from integrations.models import TransactionalSend

    send = TransactionalSend(status_reason="", reason=reason(
        "transactional", outcome="forbidden", status_code=403, message="No permission",
        not_retried=True))
    english = send.reason_shown
    with translation.override("de"):
        german = send.reason_shown
    assert "transactional.send permission (403)" in english and "Not retried" in english
    assert german != english and "transactional.send" in german


def test_the_admin_attempt_list_rounds_durations(admin_client, make_hub):
    hub, _token = make_hub()
    DeliveryAttempt.objects.create(hub=hub, endpoint="https://rest.iad-01.braze.com",
                                   status_code=201, outcome="success",
                                   duration_ms=1.8695689999503884)
    html = admin_client.get(reverse("admin:integrations_deliveryattempt_changelist")
                            ).content.decode()
    assert "1.869" not in html and "2 ms" in html

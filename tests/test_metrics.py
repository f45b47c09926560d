"""GET /metrics: closed unless configured, Prometheus' text format, and what each metric counts
(webhooks by hub and code, intake latency, backlog per hub, Braze answers, objects per request,
rate-budget waits, retries, held and failed submissions)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from integrations.models import FieldMapping, Submission
from integrations.services import rate_budget
from integrations.services.braze_api import braze_client
from integrations.services.delivery import delivery_run
from integrations.services.intake import submission_receive
from tests.conftest import komo_entry

TOKEN = "metrics-scraper-token-0123456789"


@pytest.fixture(autouse=True)
def _metrics_on(settings, db):
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOWED_ADDRESSES = []
    cache.clear()
    braze_client.cache_clear()
    yield
    braze_client.cache_clear()


def scrape(**headers) -> str:
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return response.content.decode()


def value(text: str, name: str, **labels: str) -> float:
    """A sample's value in the exposition (0 when absent: a counter not yet incremented)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def post_webhook(hub, token, payload=None):
    return Client().post(
        f"/api/v1/hubs/{hub.slug}/submissions",
        data=payload or komo_entry(),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )


# --- access -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_metrics_are_off_without_a_token_or_addresses(settings):
    settings.METRICS_TOKEN = ""
    response = Client().get("/metrics")
    assert response.status_code == 404
    assert b"portal_" not in response.content


@pytest.mark.django_db
@pytest.mark.parametrize("authorization", ["", "Bearer wrong-token", f"Basic {TOKEN}", TOKEN])
def test_metrics_refuse_a_missing_or_wrong_token(authorization):
    response = Client().get("/metrics", HTTP_AUTHORIZATION=authorization)
    assert response.status_code == 403
    assert response["WWW-Authenticate"] == "Bearer"
    assert b"portal_" not in response.content


@pytest.mark.django_db
def test_metrics_by_allowed_address(settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_ADDRESSES = ["10.1.0.0/16", "::1"]
    assert Client(REMOTE_ADDR="10.1.2.3").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="::1").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="10.2.0.1").get("/metrics").status_code == 403
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 403


@pytest.mark.django_db
def test_metrics_refuse_other_methods():
    response = Client().post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 405


# --- content ------------------------------------------------------------------------------------


def test_webhooks_are_counted_by_hub_and_code_and_timed(make_hub):
    hub, token = make_hub()
    before = scrape()
    assert post_webhook(hub, token).status_code == 202
    assert post_webhook(hub, "kbp_wrong-token-0000000000").status_code == 401
    after = scrape()

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("portal_webhooks_total", hub=hub.slug, code="202") == 1
    # a refused webhook names no hub: strangers cannot create series with made-up slugs
    assert delta("portal_webhooks_total", hub="-", code="401") == 1
    assert delta("portal_webhooks_total", hub=hub.slug, code="401") == 0
    assert delta("portal_webhook_duration_seconds_count") == 2
    assert delta("portal_webhook_duration_seconds_bucket", le="+Inf") == 2
    assert delta("portal_webhook_duration_seconds_sum") > 0


def test_backlog_size_and_oldest_due_age_per_hub(make_hub):
    hub, _ = make_hub()
    quiet, _ = make_hub(slug="quiet-hub")
    for _ in range(3):
        submission_receive(hub=hub, payload=komo_entry())
    later = submission_receive(hub=hub, payload=komo_entry()).submission
    Submission.objects.filter(pk=later.pk).update(
        next_attempt_at=timezone.now() + timedelta(hours=1)
    )
    oldest = Submission.objects.filter(hub=hub).exclude(pk=later.pk).first()
    Submission.objects.filter(pk=oldest.pk).update(
        next_attempt_at=timezone.now() - timedelta(minutes=10)
    )
    text = scrape()
    assert value(text, "portal_backlog_submissions", hub=hub.slug) == 4
    assert 600 <= value(text, "portal_backlog_oldest_due_age_seconds", hub=hub.slug) < 660
    assert value(text, "portal_backlog_submissions", hub=quiet.slug) == 0
    assert value(text, "portal_backlog_oldest_due_age_seconds", hub=quiet.slug) == 0


def test_braze_answers_latency_objects_and_outcomes(sandbox_hub, sandbox):
    hub, _ = sandbox_hub
    FieldMapping.objects.filter(hub=hub, attribute="dob").update(value_type="string")
    for _ in range(3):
        submission_receive(hub=hub, payload=komo_entry())
    submission_receive(hub=hub, payload=komo_entry(birthday="02/07/1988"))  # Braze refuses it
    submission_receive(hub=hub, payload=komo_entry(email=""))  # no identity: held
    before = scrape()
    delivery_run(hub_id=hub.pk)
    after = scrape()

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("portal_braze_requests_total", hub=hub.slug, kind="users_track", code="201") == 1
    assert delta("portal_braze_request_duration_seconds_count", kind="users_track") == 1
    assert delta("portal_braze_objects_per_request_count") == 1
    # four people sent: an attributes object and an event each
    assert delta("portal_braze_objects_per_request_sum") == 8
    assert delta("portal_submission_outcomes_total", hub=hub.slug, outcome="delivered") == 3
    assert delta("portal_submission_outcomes_total", hub=hub.slug, outcome="failed") == 1
    assert delta("portal_submission_outcomes_total", hub=hub.slug, outcome="held") == 1


def test_braze_errors_and_retries_are_counted(sandbox_hub, sandbox):
    hub, _ = sandbox_hub
    sandbox.configure(status_next=[503])
    submission_receive(hub=hub, payload=komo_entry())
    before = scrape()
    delivery_run(hub_id=hub.pk)
    after = scrape()
    code = value(after, "portal_braze_requests_total", hub=hub.slug, code="503") - value(
        before, "portal_braze_requests_total", hub=hub.slug, code="503"
    )
    retries = value(after, "portal_submission_outcomes_total", hub=hub.slug, outcome="retry") - (
        value(before, "portal_submission_outcomes_total", hub=hub.slug, outcome="retry")
    )
    assert (code, retries) == (1, 1)


def test_rate_budget_sleeps_and_postponements_are_counted(sandbox_hub, sandbox, monkeypatch):
    hub, _ = sandbox_hub
    submission_receive(hub=hub, payload=komo_entry())
    real_acquire = rate_budget.budget_acquire
    answers = iter([rate_budget.Grant(slot=None, wait=0.01)])

    def acquire(**kwargs):  # the first ask waits 10 ms for the next window, then a slot
        return next(answers, None) or real_acquire(**kwargs)

    monkeypatch.setattr(rate_budget, "budget_acquire", acquire)
    before = scrape()
    delivery_run(hub_id=hub.pk)
    middle = scrape()
    assert value(middle, "portal_rate_budget_waits_total", kind="sleep") - value(
        before, "portal_rate_budget_waits_total", kind="sleep"
    ) == 1
    assert value(middle, "portal_rate_budget_wait_seconds_total", kind="sleep") - value(
        before, "portal_rate_budget_wait_seconds_total", kind="sleep"
    ) == pytest.approx(0.01)
    # a spent budget with a distant reset: the due submissions are put off, nothing is sent
    submission_receive(hub=hub, payload=komo_entry())
    rate_budget.budget_record(
        fingerprint=hub.connection.api_key_fingerprint,
        remaining=0,
        reset=int(timezone.now().timestamp()) + 30,
    )
    delivery_run(hub_id=hub.pk)
    after = scrape()
    assert value(after, "portal_rate_budget_waits_total", kind="postpone") - value(
        middle, "portal_rate_budget_waits_total", kind="postpone"
    ) == 1

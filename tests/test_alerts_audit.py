"""Alert mails (one per hub and cause per hour, recovery mails) and the hub's audit log
(everything that happened, filterable, keyset pages without counts, a streamed CSV)."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation

from integrations import tasks
from integrations.braze.client import Outcome, TrackResult
from integrations.health import Cause
from integrations.models import (
    AlertState,
    AuditEvent,
    AuditKind,
    BrazeConnection,
    ConnectionStatus,
    HubMembership,
    HubRole,
    Submission,
)
from integrations.services.alerts import alerts_apply
from integrations.services.audit import audit_record
from integrations.services.braze_api import braze_client
from integrations.services.delivery import delivery_run
from integrations.services.erasure import person_erase
from integrations.services.hubs import (
    hub_config_export,
    hub_config_import,
    hub_signing_secret_issue,
    submissions_redeliver,
)
from integrations.services.intake import submission_receive
from tests.conftest import DEMO_KEY, komo_entry

pytestmark = pytest.mark.django_db

PAUSED = Cause("paused", "error",
               {"reason": None, "reason_text": "Braze refused the API key (401)."},
               alert="paused")
BACKLOG = Cause("backlog", "error", {"minutes": 20}, alert="backlog")


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

        def track(self, *, endpoint, api_key, body):
            return self.result

    fake = Fake()
    monkeypatch.setattr("integrations.services.braze_api.braze_client", lambda: fake)
    return fake


def person(username: str, hub, role: str, email: str | None = None):
    user = get_user_model().objects.create_user(
        username=username, password="pw-Secret-123", is_staff=True,
        email=email if email is not None else f"{username}@example.com")
    HubMembership.objects.create(user=user, hub=hub, role=role)
    return user


# --- alerts -----------------------------------------------------------------------------------


def test_editors_get_one_mail_per_cause_per_hour_and_a_recovery_mail(make_hub):
    # given a hub with an editor, a support viewer and an editor without email
    hub, _token = make_hub()
    person("ed", hub, HubRole.EDITOR)
    person("sue", hub, HubRole.VIEWER)
    person("noemail", hub, HubRole.EDITOR, email="")
    now = timezone.now()
    # when the connection pauses, then the check runs again and again within the hour
    alerts_apply(hub=hub, causes=[PAUSED], now=now)
    alerts_apply(hub=hub, causes=[PAUSED], now=now + timedelta(minutes=1))
    alerts_apply(hub=hub, causes=[PAUSED], now=now + timedelta(minutes=30))
    # then one mail, to the editor with an address only
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["ed@example.com"]
    assert "paused" in mail.outbox[0].subject
    assert "Braze refused the API key (401)." in mail.outbox[0].body
    # when it recovers
    alerts_apply(hub=hub, causes=[], now=now + timedelta(minutes=40))
    # then a recovery mail
    assert len(mail.outbox) == 2
    assert "works again" in mail.outbox[1].subject
    # when it flaps within the hour: no new mail, and no recovery for an untold episode
    alerts_apply(hub=hub, causes=[PAUSED], now=now + timedelta(minutes=45))
    alerts_apply(hub=hub, causes=[], now=now + timedelta(minutes=50))
    assert len(mail.outbox) == 2
    # after the hour a new pause mails again
    alerts_apply(hub=hub, causes=[PAUSED], now=now + timedelta(minutes=70))
    assert len(mail.outbox) == 3


def test_each_cause_is_counted_on_its_own(make_hub):
    hub, _token = make_hub()
    person("ed", hub, HubRole.EDITOR)
    now = timezone.now()
    alerts_apply(hub=hub, causes=[PAUSED], now=now)
    alerts_apply(hub=hub, causes=[PAUSED, BACKLOG], now=now + timedelta(minutes=5))
    assert [m.subject for m in mail.outbox] == [
        "Summer competition: delivery to Braze is paused",
        "Summer competition: submissions wait longer than 15 minutes",
    ]
    assert set(AlertState.objects.filter(active=True).values_list("cause", flat=True)) == {
        "paused", "backlog"}


def test_the_schedule_mails_when_braze_refuses_the_key_and_logs_the_mail(make_hub, fake_braze):
    # given Braze refuses the key
    hub, _token = make_hub()
    person("ed", hub, HubRole.EDITOR)
    fake_braze.result = TrackResult(status_code=401, outcome=Outcome.UNAUTHORIZED,
                                    message="Invalid API key")
    submission_receive(hub=hub, payload=komo_entry())
    delivery_run(hub_id=hub.pk)
    # when the every-minute check runs twice
    first = tasks.alerts_check()
    second = tasks.alerts_check()
    # then
    assert (first["sent"], second["sent"]) == (1, 0)
    assert len(mail.outbox) == 1
    event = AuditEvent.objects.get(hub=hub, kind=AuditKind.ALERT)
    assert "mailed to 1 editor" in event.reason_shown


def test_the_alert_schedule_exists():
    from django_q.models import Schedule

    schedule = Schedule.objects.get(name="integrations.alerts_check")
    assert (schedule.func, schedule.schedule_type, schedule.minutes) == (
        "integrations.tasks.alerts_check", "I", 1)


# --- audit log: what is written ---------------------------------------------------------------


def test_everything_that_happens_to_a_hub_is_in_its_audit_log(make_hub, fake_braze):
    # given a hub (imported, token issued)
    hub, _token = make_hub()
    editor = person("ed", hub, HubRole.EDITOR)
    # when its configuration changes, a secret is issued, the key is refused, a person fixes
    # it, support redelivers, a person is erased and a backfill (another branch) records itself
    config = hub_config_export(hub)
    config["name"] = "Winter competition"
    hub_config_import(config=config, user=editor, action="edited")
    hub_signing_secret_issue(hub=hub, user=editor)
    fake_braze.result = TrackResult(status_code=401, outcome=Outcome.UNAUTHORIZED,
                                    message="Invalid API key")
    submission = submission_receive(hub=hub, payload=komo_entry()).submission
    delivery_run(hub_id=hub.pk)
    hub.refresh_from_db()
    config = hub_config_export(hub)
    config["braze"] = {"rest_endpoint": hub.connection.rest_endpoint, "api_key": DEMO_KEY + "x"}
    hub_config_import(config=config, user=editor, action="edited")
    submissions_redeliver(pks=[submission.pk], user=editor)
    person_erase("email", "nobody@example.com", [hub], user=editor)
    audit_record(hub=hub, kind="backfill", action="backfill-imported", user=editor)
    # then
    actions = list(AuditEvent.objects.filter(hub=hub).order_by("at", "id")
                   .values_list("kind", "action"))
    assert actions == [
        ("config", "imported"), ("token", "token-issued"), ("config", "edited"),
        ("secret", "signing-secret-issued"), ("connection", "paused"), ("connection", "resumed"),
        ("config", "edited"), ("redelivery", "redelivered"), ("erasure", "person-erased"),
        ("backfill", "backfill-imported"),
    ]
    edited = AuditEvent.objects.filter(hub=hub, action="edited").order_by("at", "id")
    assert edited[0].actor == "ed" and edited[0].changes["name"] == [
        "Summer competition", "Winter competition"]
    assert edited[1].changes == {"braze.api_key": "changed"}
    paused = AuditEvent.objects.get(hub=hub, action="paused")
    assert "refused the API key" in paused.reason_shown and paused.actor == ""
    secrets = " ".join(str(e.reason) + str(e.changes) for e in AuditEvent.objects.all())
    assert DEMO_KEY not in secrets and "nobody@example.com" not in secrets


# --- audit log: the page and the CSV ----------------------------------------------------------


def events(hub, count: int, kind: str = "config") -> None:
    start = timezone.now() - timedelta(days=1)
    AuditEvent.objects.bulk_create(
        AuditEvent(hub=hub, at=start + timedelta(seconds=i // 2), kind=kind, action=f"a-{i}",
                   changes={"retention_days": [90, 30 + i]}) for i in range(count))


def test_the_timeline_pages_by_keyset_without_counting(client, make_hub):
    # given 120 events, pairs sharing a timestamp
    hub, _token = make_hub()
    AuditEvent.objects.all().delete()
    events(hub, 120)
    client.force_login(person("ed", hub, HubRole.HEALTH))
    url = reverse("integrations:hub_audit", args=[hub.slug])
    seen: list[str] = []
    # when
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    while True:
        assert response.status_code == 200
        seen += [row["event"].action for row in response.context["rows"]]
        if not response.context["next_url"]:
            break
        response = client.get(url + response.context["next_url"])
    # then every event once, newest first, and no COUNT on the first page
    assert seen == [f"a-{i}" for i in range(119, -1, -1)]
    assert not any("COUNT(" in q["sql"].upper() for q in queries)


def test_the_timeline_filters_by_kind_and_time_and_refuses_bad_input(client, make_hub):
    hub, _token = make_hub()
    events(hub, 3, kind="alert")
    client.force_login(person("ed", hub, HubRole.EDITOR))
    url = reverse("integrations:hub_audit", args=[hub.slug])
    rows = client.get(url, {"kind": "alert"}).context["rows"]
    assert [row["event"].kind for row in rows] == ["alert"] * 3
    tomorrow = (timezone.now() + timedelta(days=1)).date().isoformat()
    assert client.get(url, {"since": tomorrow}).context["rows"] == []
    for bad in ({"kind": "nonsense"}, {"since": "yesterday"}, {"before": "x,1"},
                {"since": tomorrow, "until": "2020-01-01"}):
        assert client.get(url, bad).status_code == 400
    csv_url = reverse("integrations:hub_audit_csv", args=[hub.slug])
    assert client.get(csv_url, {"before": "nope"}).status_code == 400


def test_the_audit_log_is_for_the_hubs_members_only(client, make_hub):
    hub, _token = make_hub()
    other, _token = make_hub(slug="other-hub")
    client.force_login(person("ed", other, HubRole.EDITOR))
    assert client.get(reverse("integrations:hub_audit", args=[hub.slug])).status_code == 404
    assert client.get(reverse("integrations:hub_audit_csv", args=[hub.slug])).status_code == 404


def test_the_csv_streams_every_event_in_words_and_never_runs_formulas(client, make_hub):
    # given
    hub, _token = make_hub()
    events(hub, 3)
    audit_record(hub=hub, kind="config", action="edited",
                 changes={"name": ["=HYPERLINK(\"x\")", "Winter"]})
    client.force_login(person("ed", hub, HubRole.EDITOR))
    # when
    response = client.get(reverse("integrations:hub_audit_csv", args=[hub.slug]))
    # then
    assert response.streaming and response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:3] == ["When (UTC)", "Kind", "What"]
    assert len(rows) == 1 + AuditEvent.objects.filter(hub=hub).count()
    assert "Keep personal data for (days): 90 → 32" in text
    assert "Name: '=HYPERLINK" not in text  # the cell starts with "Name", not with "="
    assert not any(cell.startswith("=") for row in rows for cell in row)


def test_the_audit_page_is_complete_in_german_and_japanese(client, make_hub, fake_braze):
    # given a pause and an alert
    hub, _token = make_hub()
    person("ed2", hub, HubRole.EDITOR)
    fake_braze.result = TrackResult(status_code=401, outcome=Outcome.UNAUTHORIZED,
                                    message="Invalid API key")
    submission_receive(hub=hub, payload=komo_entry())
    delivery_run(hub_id=hub.pk)
    tasks.alerts_check()
    client.force_login(person("ed", hub, HubRole.EDITOR))
    url = reverse("integrations:hub_audit", args=[hub.slug])
    english = client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    for language in ("de", "ja"):
        html = client.get(url, HTTP_ACCEPT_LANGUAGE=language).content.decode()
        # then none of the English sentences is left
        for sentence in ("Audit log", "refused the API key", "The mail that went out",
                         "delivery to Braze is paused", "Download CSV", "ingest token"):
            assert sentence in english
            assert sentence not in html, (language, sentence)
    translation.activate("en")


def test_pausing_twice_is_logged_once(make_hub, fake_braze):
    hub, _token = make_hub()
    fake_braze.result = TrackResult(status_code=401, outcome=Outcome.UNAUTHORIZED,
                                    message="Invalid API key")
    submission_receive(hub=hub, payload=komo_entry())
    delivery_run(hub_id=hub.pk)
    BrazeConnection.objects.filter(hub=hub).update(status=ConnectionStatus.PAUSED)
    Submission.objects.update(next_attempt_at=timezone.now())
    delivery_run(hub_id=hub.pk)
    assert AuditEvent.objects.filter(hub=hub, action="paused").count() == 1

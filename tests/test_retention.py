"""Retention per hub: exactly the rows past each hub's window lose their personal data, counts
stay, attempt items go, a second run does nothing; the history window deletes; the hub JSON, the
pages, the command and the schedule."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.db.models import Count
from django.urls import reverse
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from integrations.models import (
    AttemptItem,
    DeliveryAttempt,
    Hub,
    HubMembership,
    HubRole,
    Submission,
    SubmissionStatus,
    TransactionalSend,
)
from integrations.services.braze_api import braze_client
from integrations.services.hubs import (
    hub_config_export,
    hub_config_import,
    submissions_redeliver,
)
from integrations.services.retention import retention_apply
from tests.conftest import DEFAULT_CONFIG
from tests.privacy_data import HUB_CHANGES, populate

pytestmark = pytest.mark.django_db

HASHES = ("email_hash", "email_local_hash", "phone_hash", "external_id_hash")


@pytest.fixture(autouse=True)
def _fresh_client():
    cache.clear()
    braze_client.cache_clear()
    yield
    braze_client.cache_clear()


def hub_with_history(make_hub, sandbox, slug: str, days: int, now) -> dict[str, list[int]]:
    """Four submissions (with attempts, items, transactional emails): half received one minute
    inside the hub's window, half one minute outside it."""
    hub, _ = make_hub(endpoint=sandbox.url, slug=slug, name=slug, retention_days=days,
                      **HUB_CHANGES)  # fmt: skip
    submissions = populate(hub)
    cutoff = now - timedelta(days=days)
    rows = {"inside": [], "outside": []}
    for index, submission in enumerate(submissions):
        side = "outside" if index % 2 else "inside"
        when = cutoff + (timedelta(minutes=1) if side == "inside" else -timedelta(minutes=1))
        Submission.objects.filter(pk=submission.pk).update(received_at=when)
        DeliveryAttempt.objects.filter(items__submission=submission).update(started_at=when)
        rows[side].append(submission.pk)
    return rows


def status_counts() -> list[dict]:
    return list(
        Submission.objects.values("hub__slug", "status", "event")
        .annotate(n=Count("id"), attempts=Count("attempts"))
        .order_by("hub__slug", "status", "event")
    )


def test_retention_redacts_exactly_the_rows_past_each_hubs_window(make_hub, sandbox):
    now = timezone.now()
    short = hub_with_history(make_hub, sandbox, "short", 30, now)
    long = hub_with_history(make_hub, sandbox, "long", 90, now)
    counts = status_counts()
    attempts_before = {s.pk: s.attempts for s in Submission.objects.all()}
    outside = short["outside"] + long["outside"]
    inside = short["inside"] + long["inside"]
    assert AttemptItem.objects.filter(submission_id__in=outside).exists()
    assert TransactionalSend.objects.filter(submission_id__in=outside).exists()

    report = retention_apply(now=now, batch_size=1)

    assert report.totals()["submissions_redacted"] == len(outside) == 4
    for submission in Submission.objects.filter(pk__in=outside):
        assert submission.payload is None and submission.problems == []
        assert all(getattr(submission, column) == "" for column in HASHES)
        assert submission.redacted_at == now
    for submission in Submission.objects.filter(pk__in=inside):
        assert submission.payload["email"] and submission.email_hash
        assert submission.redacted_at is None
    assert not AttemptItem.objects.filter(submission_id__in=outside).exists()
    assert AttemptItem.objects.filter(submission_id__in=inside).exists()
    for send in TransactionalSend.objects.filter(submission_id__in=outside):
        assert (send.request_body, send.response_body) == ({}, "")
    for send in TransactionalSend.objects.filter(submission_id__in=inside):
        assert send.request_body
    redacted = DeliveryAttempt.objects.filter(redacted_at=now)
    assert redacted.exists()
    assert all(a.request_body == {} and a.response_body == "" for a in redacted)
    assert all(a.request_body for a in DeliveryAttempt.objects.filter(redacted_at__isnull=True))
    # status, event kinds and attempt counts still add up
    assert status_counts() == counts
    assert {s.pk: s.attempts for s in Submission.objects.all()} == attempts_before

    again = retention_apply(now=now)
    assert not any(again.totals().values())


def test_a_submission_still_being_delivered_keeps_its_data(make_hub):
    hub, _ = make_hub(retention_days=1)
    from integrations.services.intake import submission_receive
    from tests.conftest import komo_entry

    pending = submission_receive(hub=hub, payload=komo_entry()).submission
    Submission.objects.filter(pk=pending.pk).update(
        received_at=timezone.now() - timedelta(days=2), status=SubmissionStatus.PENDING
    )
    retention_apply()
    pending.refresh_from_db()
    assert pending.payload and pending.redacted_at is None
    Submission.objects.filter(pk=pending.pk).update(status=SubmissionStatus.FAILED)
    retention_apply()
    pending.refresh_from_db()
    assert pending.payload is None and pending.redacted_at is not None
    # and it can no longer be queued again: nothing is left to send
    assert submissions_redeliver(pks=[pending.pk]) == 0


def test_redacted_rows_are_deleted_after_the_history_window(make_hub, sandbox, settings):
    settings.RETENTION_HISTORY_DAYS = 400
    now = timezone.now()
    rows = hub_with_history(make_hub, sandbox, "short", 30, now)
    retention_apply(now=now)
    later = now + timedelta(days=370, seconds=30)  # outside: 400 days + 90 s old; inside: not

    report = retention_apply(now=later)

    assert report.totals()["submissions_deleted"] == len(rows["outside"])
    assert not Submission.objects.filter(pk__in=rows["outside"]).exists()
    assert Submission.objects.filter(pk__in=rows["inside"], redacted_at=later).count() == 2
    assert report.totals()["attempts_deleted"] >= 1
    assert not TransactionalSend.objects.filter(submission_id__in=rows["outside"]).exists()


def test_a_hub_keeping_data_longer_than_the_history_window_keeps_its_rows(make_hub, settings):
    settings.RETENTION_HISTORY_DAYS = 10
    hub, _ = make_hub(retention_days=20)
    from integrations.services.intake import submission_receive
    from tests.conftest import komo_entry

    stored = submission_receive(hub=hub, payload=komo_entry()).submission
    Submission.objects.filter(pk=stored.pk).update(
        received_at=timezone.now() - timedelta(days=15), status=SubmissionStatus.DELIVERED)
    retention_apply()
    stored.refresh_from_db()
    assert stored.payload and stored.redacted_at is None


# --- hub JSON, command, schedule, pages --------------------------------------------------------


def test_retention_days_round_trips_through_the_hub_json(make_hub):
    hub, _ = make_hub(retention_days=30)
    assert hub.retention_days == 30
    assert hub_config_export(hub)["retention_days"] == 30
    other, _ = make_hub(slug="defaults")
    assert other.retention_days == 90


@pytest.mark.parametrize(
    ("value", "message"),
    [(0, "at least 1 day"), (3651, "at most 3650 days"), ("soon", "whole number of days")],
)
def test_retention_days_out_of_range_is_refused_clearly(value, message):
    config = {**DEFAULT_CONFIG, "retention_days": value}
    with pytest.raises(ValidationError) as error:
        hub_config_import(config=config)
    assert message in str(error.value.detail["retention_days"][0])
    assert not Hub.objects.exists()


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_the_command_applies_one_hub_as_of_a_given_time(make_hub):
    from integrations.services.intake import submission_receive
    from tests.conftest import komo_entry

    first, _ = make_hub(slug="first", retention_days=5)
    second, _ = make_hub(slug="second", retention_days=5)
    for hub in (first, second):
        stored = submission_receive(hub=hub, payload=komo_entry()).submission
        Submission.objects.filter(pk=stored.pk).update(status=SubmissionStatus.DELIVERED)
    in_a_week = (timezone.now() + timedelta(days=7)).isoformat()

    out = run("retention_apply", "--now", in_a_week, "--hub", "first", "--batch-size", "10")

    assert "Personal data removed from 1 submission(s)" in out
    assert Submission.objects.get(hub=first).redacted_at is not None
    assert Submission.objects.get(hub=second).redacted_at is None
    with pytest.raises(CommandError, match="ISO 8601"):
        run("retention_apply", "--now", "next tuesday")
    with pytest.raises(CommandError, match="No hub"):
        run("retention_apply", "--hub", "nope")


def test_an_hourly_schedule_applies_retention():
    from django_q.models import Schedule

    schedule = Schedule.objects.get(name="integrations.retention_apply")
    assert (schedule.func, schedule.schedule_type) == ("integrations.tasks.retention_apply", "H")
    from integrations.tasks import retention_apply as task

    assert task() == {key: 0 for key in task()}


def test_the_pages_say_how_long_data_is_kept(client, make_hub, django_user_model):
    from integrations.services.intake import submission_receive
    from tests.conftest import komo_entry

    hub, _ = make_hub(retention_days=30)
    user = django_user_model.objects.create_user("support", password="x")
    HubMembership.objects.create(user=user, hub=hub, role=HubRole.VIEWER)
    client.force_login(user)
    stored = submission_receive(hub=hub, payload=komo_entry(first_name="Zelda")).submission

    dashboard = client.get(reverse("integrations:hub_dashboard", args=[hub.slug])).content.decode()
    assert "Personal data is kept for 30 days" in dashboard
    detail_url = reverse("integrations:submission_detail", args=[stored.public_id])
    assert "Personal data is kept for 30 days" in client.get(detail_url).content.decode()

    Submission.objects.filter(pk=stored.pk).update(status=SubmissionStatus.DELIVERED)
    retention_apply(now=timezone.now() + timedelta(days=31))
    detail = client.get(detail_url).content.decode()
    assert "Personal data was removed on" in detail and "after 30 days" in detail
    assert "Zelda" not in detail


@pytest.mark.parametrize(("posted", "kept", "valid"), [("30", 30, True), (None, 45, True),
                                                      ("0", None, False), ("3651", None, False)])
def test_the_hub_form_sets_retention_days_within_limits(make_hub, posted, kept, valid):
    from integrations.forms import HubForm

    hub, _ = make_hub(retention_days=45)
    data = {
        "name": hub.name, "slug": hub.slug, "identity_type": hub.identity_type,
        "identity_field": hub.identity_field, "alias_label": hub.alias_label,
        "events": "\n".join(hub.events), "create_missing_users": "on",
        "default_phone_region": hub.default_phone_region,
    }  # fmt: skip
    if posted is not None:
        data["retention_days"] = posted
    form = HubForm(data=data, instance=hub)
    assert form.is_valid() is valid, form.errors
    if valid:
        assert form.cleaned_data["retention_days"] == kept
    else:
        assert "retention_days" in form.errors

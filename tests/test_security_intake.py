"""Intake defences: ingest-token rotation with a grace period, the per-hub rate limit (429 with
Retry-After) and the body-size limit (413)."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import caches
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from integrations import tokens
from integrations.models import Hub, Submission
from integrations.services.hubs import TOKEN_GRACE_DEFAULT, hub_token_issue
from integrations.services.intake_window import (
    intake_rate_wait,
    intake_settle,
    intake_windows_forget,
)
from tests.conftest import komo_entry

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_throttle():
    caches["throttle"].clear()
    yield
    caches["throttle"].clear()


def post(client: Client, hub: Hub, token: str, body: dict | bytes | None = None, *,
         path_token: bool = False):
    data = body if isinstance(body, bytes) else json.dumps(body or komo_entry())
    if path_token:
        return client.post(f"/api/v1/ingest/{token}", data=data, content_type="application/json")
    return client.post(f"/api/v1/hubs/{hub.slug}/submissions", data=data,
                       content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")


# --- token rotation -------------------------------------------------------------------------


@pytest.mark.parametrize("path_token", [False, True])
def test_the_previous_token_works_during_the_grace_period_only(make_hub, client, path_token):
    # given a rotation with a grace period
    hub, old = make_hub()
    new = hub_token_issue(hub=hub, grace=timedelta(hours=2))
    # then both tokens work
    assert post(client, hub, old, path_token=path_token).status_code == 202
    assert post(client, hub, new, path_token=path_token).status_code == 202
    # and when the grace period is over, only the new one does
    hub.refresh_from_db()
    hub.previous_token_expires_at = timezone.now() - timedelta(seconds=1)
    hub.save()  # (save, not update(): the webhook's per-process hub cache listens to post_save)
    assert post(client, hub, old, path_token=path_token).status_code == 401
    assert post(client, hub, new, path_token=path_token).status_code == 202


def test_no_grace_revokes_the_previous_token_at_once(make_hub, client):
    hub, old = make_hub()
    hub_token_issue(hub=hub)
    hub.refresh_from_db()
    assert (hub.previous_token_hash, hub.previous_token_expires_at) == ("", None)
    assert post(client, hub, old).status_code == 401


def test_only_one_previous_token_is_kept(make_hub, client):
    hub, first = make_hub()
    second = hub_token_issue(hub=hub, grace=timedelta(hours=1))
    third = hub_token_issue(hub=hub, grace=timedelta(hours=1))
    assert post(client, hub, first).status_code == 401
    assert post(client, hub, second).status_code == 202
    assert post(client, hub, third).status_code == 202


def test_the_previous_token_is_stored_hashed(make_hub):
    hub, old = make_hub()
    hub_token_issue(hub=hub, grace=timedelta(hours=1))
    hub.refresh_from_db()
    assert hub.previous_token_hash == tokens.token_hash(old)
    assert old not in hub.previous_token_hash


def test_a_previous_token_of_another_hub_opens_nothing(make_hub, client):
    hub_a, old_a = make_hub()
    hub_b, _ = make_hub(slug="other-hub", name="Other")
    hub_token_issue(hub=hub_a, grace=timedelta(hours=1))
    assert post(client, hub_b, old_a).status_code == 401


def run_token(*args: str) -> list[str]:
    out = StringIO()
    call_command("hub_token", *args, stdout=out)
    return out.getvalue().strip().splitlines()


def test_command_keeps_the_old_token_for_24_hours_by_default(make_hub, client):
    hub, old = make_hub()
    lines = run_token(hub.slug)
    hub.refresh_from_db()
    left = hub.previous_token_expires_at - timezone.now()
    assert TOKEN_GRACE_DEFAULT - timedelta(minutes=1) < left <= TOKEN_GRACE_DEFAULT
    assert "keeps working until" in "\n".join(lines)
    assert post(client, hub, old).status_code == 202
    assert post(client, hub, lines[-1]).status_code == 202


def test_command_with_zero_grace_revokes_and_refuses_negative(make_hub, client):
    hub, old = make_hub()
    lines = run_token(hub.slug, "--grace-hours", "0")
    assert "stopped working" in lines[0]
    assert post(client, hub, old).status_code == 401
    with pytest.raises(CommandError):
        run_token(hub.slug, "--grace-hours", "-1")


def test_admin_rotates_with_grace_or_revokes(make_hub):
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw-123456!")
    admin = Client()
    admin.force_login(user)
    hub, old = make_hub()

    def action(name: str) -> str:
        response = admin.post(reverse("admin:integrations_hub_changelist"),
                              {"action": name, "_selected_action": [str(hub.pk)], "index": "0"})
        assert "no-store" in response["Cache-Control"]
        return response.content.decode()

    assert "keeps working until" in action("issue_token")
    hub.refresh_from_db()
    assert hub.previous_token_hash == tokens.token_hash(old)
    assert "stopped working" in action("revoke_token")
    hub.refresh_from_db()
    assert hub.previous_token_hash == ""


# --- rate limit -----------------------------------------------------------------------------


def limit_set(hub: Hub, per_minute: int) -> None:
    hub.intake_rate_per_minute = per_minute
    hub.save()


def test_over_the_hubs_limit_is_429_with_retry_after(make_hub, client):
    # given a hub that accepts 3 webhooks a minute
    hub, token = make_hub()
    limit_set(hub, 3)
    # when 5 arrive
    statuses = [post(client, hub, token).status_code for _ in range(5)]
    response = post(client, hub, token)
    # then
    assert statuses == [202, 202, 202, 429, 429]
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    assert "per minute" in response.json()["detail"]
    assert Submission.objects.count() == 3


def test_the_limit_is_per_hub(make_hub, client):
    hub_a, token_a = make_hub()
    hub_b, token_b = make_hub(slug="other-hub", name="Other")
    limit_set(hub_a, 1)
    assert [post(client, hub_a, token_a).status_code for _ in range(2)] == [202, 429]
    assert post(client, hub_b, token_b).status_code == 202


def test_the_limit_is_checked_after_the_token(make_hub, client):
    hub, token = make_hub()
    limit_set(hub, 1)
    assert [post(client, hub, "kbp_wrong").status_code for _ in range(3)] == [401] * 3
    assert post(client, hub, token).status_code == 202


def test_the_setting_is_the_default_and_zero_switches_it_off(make_hub, settings):
    hub, _ = make_hub()
    settings.WEBHOOK_RATE_PER_MINUTE = 2
    now = 1_800_000_000.0

    def webhook(at: float) -> int:
        wait = intake_rate_wait(hub=hub, now=at)
        if not wait:
            intake_settle(hub=hub, now=at)
        return wait

    assert [webhook(now) for _ in range(3)] == [0, 0, 60 - now % 60]
    assert webhook(now + 60) == 0  # the next minute
    settings.WEBHOOK_RATE_PER_MINUTE = 0
    assert webhook(now) == 0


def test_a_web_process_decides_on_the_count_it_last_saw(make_hub, settings):
    # given a hub limit of 2 and another web process that has counted 2 webhooks this minute
    hub, _ = make_hub()
    settings.WEBHOOK_RATE_PER_MINUTE = 2
    now = 1_800_000_020.0
    for _ in range(2):
        intake_settle(hub=hub, now=now)
    intake_windows_forget()  # this process has seen nothing yet
    # when this process gets its first webhook of the minute, then it admits it on its old count
    assert intake_rate_wait(hub=hub, now=now) == 0
    intake_settle(hub=hub, now=now)
    # and then it knows the shared count, and refuses
    assert intake_rate_wait(hub=hub, now=now) == 40


def test_a_broken_cache_never_refuses_a_webhook(make_hub, client, monkeypatch):
    hub, token = make_hub()
    limit_set(hub, 1)

    def broken(*args, **kwargs):
        raise ConnectionError("redis down")

    # (window_incr: the Redis backend's one-trip counter and flag)
    for name in ("incr", "add", "window_incr"):
        for alias in ("throttle", "default"):
            monkeypatch.setattr(caches[alias], name, broken, raising=False)
    assert [post(client, hub, token).status_code for _ in range(3)] == [202] * 3


# --- size limit -----------------------------------------------------------------------------


@pytest.mark.parametrize("path_token", [False, True])
def test_over_the_size_limit_is_413_and_stores_nothing(make_hub, client, settings, path_token):
    settings.WEBHOOK_MAX_BODY_BYTES = 1_000
    hub, token = make_hub()
    response = post(client, hub, token, komo_entry(comment="x" * 2_000), path_token=path_token)
    assert response.status_code == 413
    assert "1000 bytes" in response.json()["detail"]
    assert not Submission.objects.exists()


def test_a_lying_content_length_cannot_sneak_a_large_body_in(make_hub, settings):
    settings.WEBHOOK_MAX_BODY_BYTES = 1_000
    hub, token = make_hub()
    body = json.dumps(komo_entry(comment="x" * 5_000)).encode()
    response = Client().generic(
        "POST", f"/api/v1/hubs/{hub.slug}/submissions", body,
        content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}",
        CONTENT_LENGTH="900",
    )
    assert response.status_code == 400  # the first 900 bytes are not a JSON object
    assert not Submission.objects.exists()

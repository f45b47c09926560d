"""Signed webhooks: the pure X-Komo-Signature module, the intake check, rotation of the secret with
two secrets accepted, the command and the admin actions."""

from __future__ import annotations

import json
import re
import time
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse

from integrations import signatures
from integrations.models import ConfigChange, Hub, Submission
from integrations.services.hubs import (
    SignatureSetupError,
    hub_signature_requirement_set,
    hub_signing_secret_issue,
    hub_signing_secret_previous_drop,
)
from integrations.signatures import (
    SignatureError,
    SignatureProblem,
    signature_compute,
    signature_header,
    signature_parse,
    signature_verify,
)
from tests.conftest import komo_entry

SECRET = "kbs_unit-test-secret-0123456789abcdef"
OTHER = "kbs_another-secret-fedcba9876543210"
BODY = b'{"id":"1","event":"CompetitionEntrySuccess","timestamp":"2026-01-01T00:00:00Z"}'
NOW = 1_780_000_000


# --- the pure module --------------------------------------------------------------------------


def test_signature_is_hmac_sha256_over_timestamp_dot_body():
    import hashlib
    import hmac

    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert signature_compute(secret=SECRET, timestamp=NOW, body=BODY) == expected
    assert signature_header(secret=SECRET, body=BODY, timestamp=NOW) == f"t={NOW},v1={expected}"


def test_a_fresh_signature_is_accepted():
    header = signature_header(secret=SECRET, body=BODY, timestamp=NOW)
    parsed = signature_verify(header=header, body=BODY, secrets_accepted=[SECRET], now=NOW + 10)
    assert parsed.timestamp == NOW


@pytest.mark.parametrize("skew", [-300, 300, -1, 0, 299])
def test_the_window_is_five_minutes_either_way(skew):
    header = signature_header(secret=SECRET, body=BODY, timestamp=NOW)
    signature_verify(header=header, body=BODY, secrets_accepted=[SECRET], now=NOW - skew)


@pytest.mark.parametrize("skew", [-301, 301, 86_400])
def test_an_old_or_future_timestamp_is_expired(skew):
    header = signature_header(secret=SECRET, body=BODY, timestamp=NOW)
    with pytest.raises(SignatureError) as caught:
        signature_verify(header=header, body=BODY, secrets_accepted=[SECRET], now=NOW + skew)
    assert caught.value.problem == SignatureProblem.EXPIRED
    assert "5 minutes" in caught.value.message


def test_a_changed_body_or_timestamp_does_not_match():
    header = signature_header(secret=SECRET, body=BODY, timestamp=NOW)
    for body in (BODY + b" ", BODY.replace(b"1", b"2"), b""):
        with pytest.raises(SignatureError) as caught:
            signature_verify(header=header, body=body, secrets_accepted=[SECRET], now=NOW)
        assert caught.value.problem == SignatureProblem.MISMATCH
    moved = header.replace(f"t={NOW}", f"t={NOW + 1}")
    with pytest.raises(SignatureError):
        signature_verify(header=moved, body=BODY, secrets_accepted=[SECRET], now=NOW)


def test_either_secret_of_a_rotation_is_accepted_and_no_other():
    for secret in (SECRET, OTHER):
        header = signature_header(secret=secret, body=BODY, timestamp=NOW)
        signature_verify(header=header, body=BODY, secrets_accepted=[OTHER, SECRET], now=NOW)
    stranger = signature_header(secret="kbs_stranger", body=BODY, timestamp=NOW)
    with pytest.raises(SignatureError):
        signature_verify(header=stranger, body=BODY, secrets_accepted=[OTHER, SECRET], now=NOW)


def test_several_v1_values_and_unknown_schemes_are_tolerated():
    good = signature_compute(secret=SECRET, timestamp=NOW, body=BODY)
    header = f"t={NOW}, v0=abc, v1={'0' * 64}, v1={good.upper()}"
    signature_verify(header=header, body=BODY, secrets_accepted=[SECRET], now=NOW)


@pytest.mark.parametrize(
    "header",
    [
        "v1=" + "a" * 64,
        f"t={NOW}",
        f"t=yesterday,v1={'a' * 64}",
        f"t={NOW},v1=nothex",
        f"t={NOW},v1={'a' * 63}",
        f"t={NOW},t={NOW},v1={'a' * 64}",
        f"t={NOW};v1={'a' * 64}",
        "garbage",
        f"t=-{NOW},v1={'a' * 64}",
        "t=1," + ",".join(["v1=" + "a" * 64] * 20),
        "t=1,v1=" + "a" * 5000,
        f"t={NOW},v1=ä{'a' * 63}",
    ],
)
def test_malformed_headers_are_named(header):
    with pytest.raises(SignatureError) as caught:
        signature_parse(header)
    assert caught.value.problem == SignatureProblem.MALFORMED
    assert "t=<unix seconds>,v1=" in caught.value.message


@pytest.mark.parametrize("header", [None, "", "   "])
def test_a_missing_header_is_named(header):
    with pytest.raises(SignatureError) as caught:
        signature_verify(header=header, body=BODY, secrets_accepted=[SECRET], now=NOW)
    assert caught.value.problem == SignatureProblem.MISSING
    assert "Missing X-Komo-Signature" in caught.value.message


def test_no_secret_accepts_nothing():
    header = signature_header(secret="", body=BODY, timestamp=NOW)
    with pytest.raises(SignatureError) as caught:
        signature_verify(header=header, body=BODY, secrets_accepted=["", ""], now=NOW)
    assert caught.value.problem == SignatureProblem.NO_SECRET


def test_generated_secrets_are_long_random_and_recognisable():
    first, second = signatures.secret_generate(), signatures.secret_generate()
    assert first != second
    assert first.startswith("kbs_") and len(first) >= 40


# --- the webhook ------------------------------------------------------------------------------


def post_signed(client: Client, hub: Hub, token: str, body: bytes, header: str | None):
    extra = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    if header is not None:
        extra["HTTP_X_KOMO_SIGNATURE"] = header
    return client.post(
        f"/api/v1/hubs/{hub.slug}/submissions",
        data=body,
        content_type="application/json",
        **extra,
    )


@pytest.fixture
def signed_hub(make_hub):
    hub, token = make_hub()
    secret = hub_signing_secret_issue(hub=hub)
    hub_signature_requirement_set(hub=hub, required=True)
    return hub, token, secret


@pytest.mark.django_db
def test_a_signed_webhook_is_accepted(signed_hub, client):
    hub, token, secret = signed_hub
    body = json.dumps(komo_entry()).encode()
    response = post_signed(client, hub, token, body, signature_header(secret=secret, body=body))
    assert response.status_code == 202
    assert Submission.objects.filter(hub=hub).count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        ("missing", "Missing X-Komo-Signature"),
        ("expired", "minutes away from our clock"),
        ("wrong-secret", "does not match"),
        ("changed-body", "does not match"),
        ("malformed", "must look like"),
    ],
)
def test_unsigned_or_badly_signed_webhooks_get_401_naming_the_problem(
    signed_hub, client, tamper, expected
):
    # given
    hub, token, secret = signed_hub
    body = json.dumps(komo_entry()).encode()
    headers = {
        "missing": None,
        "expired": signature_header(secret=secret, body=body, timestamp=int(time.time()) - 301),
        "wrong-secret": signature_header(secret=OTHER, body=body),
        "changed-body": signature_header(secret=secret, body=body + b" "),
        "malformed": "sha256=" + "a" * 64,
    }
    # when
    response = post_signed(client, hub, token, body, headers[tamper])
    # then
    assert response.status_code == 401
    assert expected in response.json()["detail"]
    assert not Submission.objects.exists()


@pytest.mark.django_db
def test_the_path_token_endpoint_checks_signatures_too(signed_hub, client):
    hub, token, secret = signed_hub
    body = json.dumps(komo_entry()).encode()
    url = f"/api/v1/ingest/{token}"
    unsigned = client.post(url, data=body, content_type="application/json")
    signed = client.post(
        url,
        data=body,
        content_type="application/json",
        HTTP_X_KOMO_SIGNATURE=signature_header(secret=secret, body=body),
    )
    assert (unsigned.status_code, signed.status_code) == (401, 202)


@pytest.mark.django_db
def test_a_replay_inside_the_window_stores_nothing_new(signed_hub, client):
    hub, token, secret = signed_hub
    body = json.dumps(komo_entry()).encode()
    header = signature_header(secret=secret, body=body)
    first = post_signed(client, hub, token, body, header)
    replay = post_signed(client, hub, token, body, header)
    assert (first.status_code, replay.status_code) == (202, 200)
    assert Submission.objects.count() == 1


@pytest.mark.django_db
def test_a_bad_token_is_refused_before_the_signature_is_looked_at(signed_hub, client):
    hub, _, secret = signed_hub
    body = json.dumps(komo_entry()).encode()
    header = signature_header(secret=secret, body=body)
    response = post_signed(client, hub, "kbp_wrong", body, header)
    assert response.status_code == 401
    assert "ingest token" in response.json()["detail"]


@pytest.mark.django_db
def test_signatures_are_not_checked_until_required(make_hub, client):
    hub, token = make_hub()
    hub_signing_secret_issue(hub=hub)
    body = json.dumps(komo_entry()).encode()
    assert post_signed(client, hub, token, body, None).status_code == 202
    assert post_signed(client, hub, token, json.dumps(komo_entry()).encode(), "junk").status_code \
        == 202


@pytest.mark.django_db
def test_rotation_accepts_both_secrets_until_the_previous_is_dropped(signed_hub, client):
    # given a rotation
    hub, token, old = signed_hub
    new = hub_signing_secret_issue(hub=hub, keep_previous=True)
    hub.refresh_from_db()

    def send(secret: str) -> int:
        body = json.dumps(komo_entry()).encode()
        return post_signed(client, hub, token, body, signature_header(secret=secret, body=body)) \
            .status_code

    # then both work
    assert (send(old), send(new)) == (202, 202)
    # and when the rotation ends, only the new one does
    assert hub_signing_secret_previous_drop(hub=hub) is True
    hub.refresh_from_db()
    assert (send(old), send(new)) == (401, 202)


@pytest.mark.django_db
def test_a_new_secret_without_keep_previous_replaces_it_at_once(signed_hub, client):
    hub, token, old = signed_hub
    hub_signing_secret_issue(hub=hub)
    body = json.dumps(komo_entry()).encode()
    response = post_signed(client, hub, token, body, signature_header(secret=old, body=body))
    assert response.status_code == 401


@pytest.mark.django_db
def test_secrets_are_encrypted_at_rest_and_never_in_the_change_history(signed_hub):
    from django.db import connection

    hub, _, secret = signed_hub
    with connection.cursor() as cursor:
        cursor.execute("SELECT signing_secret FROM integrations_hub WHERE id = %s", [hub.pk])
        [stored] = cursor.fetchone()
    assert stored and secret not in stored
    assert secret not in json.dumps(list(ConfigChange.objects.values("summary", "changes")))


@pytest.mark.django_db
def test_signatures_cannot_be_required_without_a_secret(make_hub):
    hub, _ = make_hub()
    with pytest.raises(SignatureSetupError):
        hub_signature_requirement_set(hub=hub, required=True)
    hub.refresh_from_db()
    assert hub.require_signature is False


# --- the command --------------------------------------------------------------------------------


def run(*args: str) -> list[str]:
    out = StringIO()
    call_command("hub_signing_secret", *args, stdout=out)
    return out.getvalue().strip().splitlines()


@pytest.mark.django_db
def test_command_prints_the_secret_alone_on_the_last_line(make_hub):
    hub, _ = make_hub()
    lines = run(hub.slug, "--require")
    secret = lines[-1]
    hub.refresh_from_db()
    assert secret.startswith("kbs_") and hub.signing_secret == secret
    assert hub.require_signature is True
    assert all(secret not in line for line in lines[:-1])


@pytest.mark.django_db
def test_command_rotates_and_ends_the_rotation(make_hub):
    hub, _ = make_hub()
    first = run(hub.slug)[-1]
    second = run(hub.slug, "--keep-previous")[-1]
    hub.refresh_from_db()
    assert (hub.signing_secret, hub.signing_secret_previous) == (second, first)
    lines = run(hub.slug, "--drop-previous")
    hub.refresh_from_db()
    assert (hub.signing_secret, hub.signing_secret_previous) == (second, "")
    assert not any(line.startswith("kbs_") for line in lines)


@pytest.mark.django_db
def test_command_refuses_an_unknown_hub_and_requiring_without_secret(make_hub):
    hub, _ = make_hub()
    with pytest.raises(CommandError):
        run("no-such-hub")
    with pytest.raises(CommandError, match="signing secret"):
        run(hub.slug, "--drop-previous", "--require")


# --- the admin ----------------------------------------------------------------------------------


@pytest.fixture
def superuser_client(db) -> Client:
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw-123456!")
    client = Client()
    client.force_login(user)
    return client


def hub_action(client: Client, action: str, hub: Hub, **extra):
    return client.post(
        reverse("admin:integrations_hub_changelist"),
        {"action": action, "_selected_action": [str(hub.pk)], "index": "0"},
        **extra,
    )


@pytest.mark.django_db
def test_admin_issues_a_secret_shown_once_and_never_cached(make_hub, superuser_client):
    # given
    hub, _ = make_hub()
    old = hub_signing_secret_issue(hub=hub)
    # when
    response = hub_action(superuser_client, "issue_signing_secret", hub)
    # then
    html = response.content.decode()
    secret = re.search(r'value="(kbs_[^"]+)"', html).group(1)
    hub.refresh_from_db()
    assert (hub.signing_secret, hub.signing_secret_previous) == (secret, old)
    assert "no-store" in response["Cache-Control"]
    change_page = superuser_client.get(reverse("admin:integrations_hub_change", args=[hub.pk]))
    assert secret not in change_page.content.decode()
    assert old not in change_page.content.decode()
    assert "rotation in progress" in change_page.content.decode()


@pytest.mark.django_db
def test_admin_requires_signatures_only_with_a_secret(make_hub, superuser_client):
    hub, _ = make_hub()
    response = hub_action(superuser_client, "require_signatures", hub, follow=True)
    hub.refresh_from_db()
    assert hub.require_signature is False
    assert "Issue a signing secret" in response.content.decode()
    hub_signing_secret_issue(hub=hub)
    hub_action(superuser_client, "require_signatures", hub)
    hub.refresh_from_db()
    assert hub.require_signature is True
    hub_action(superuser_client, "accept_unsigned", hub)
    hub.refresh_from_db()
    assert hub.require_signature is False


@pytest.mark.django_db
def test_admin_ends_a_rotation(make_hub, superuser_client):
    hub, _ = make_hub()
    hub_signing_secret_issue(hub=hub)
    hub_signing_secret_issue(hub=hub, keep_previous=True)
    hub_action(superuser_client, "drop_previous_signing_secret", hub)
    hub.refresh_from_db()
    assert hub.signing_secret and not hub.signing_secret_previous


@pytest.mark.parametrize("command", ["hub_signing_secret", "hub_token"])
def test_command_help_renders(command):
    from django.core.management import load_command_class

    parser = load_command_class("integrations", command).create_parser("manage.py", command)
    assert "last line" in parser.format_help()

"""The pages' defences: sign-in throttling, CSRF on every form, security headers and CSP,
escaping on every page that shows submissions, and ``check --deploy`` with production settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth import get_user_model
from django.core.cache import caches
from django.test import Client
from django.utils import timezone

from integrations.models import (
    AttemptItem,
    ConfigChange,
    DeliveryAttempt,
    ItemResult,
    Submission,
    SubmissionStatus,
)
from integrations.services.intake import submission_receive
from tests.conftest import komo_entry
from tests.faults.pages import crawl, post_forms

BASE_DIR = Path(__file__).resolve().parent.parent
PASSWORD = "correct-horse-battery-9"
SCRIPT = '<script>alert("xss")</script>'
IMAGE = "<img src=x onerror=alert(1)>"
SVG = "<svg onload=alert(1)>"
RAW_MARKERS = (SCRIPT, IMAGE, SVG, "<script>alert")
ESCAPED_SCRIPT = "&lt;script&gt;alert("

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_throttle():
    for alias in ("throttle", "login_throttle"):
        caches[alias].clear()
    yield
    for alias in ("throttle", "login_throttle"):
        caches[alias].clear()


@pytest.fixture
def superuser(db):
    return get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)


@pytest.fixture
def signed_in(superuser) -> Client:
    client = Client()
    client.force_login(superuser)
    return client


# --- sign-in throttling ---------------------------------------------------------------------


def sign_in(client: Client, username: str, password: str, address: str = "10.0.0.1"):
    return client.post(
        "/admin/login/?next=/admin/",
        {"username": username, "password": password},
        REMOTE_ADDR=address,
    )


def test_failed_sign_ins_are_throttled_per_username_and_address(superuser, settings):
    # given five failures
    client = Client()
    for _ in range(settings.LOGIN_THROTTLE_ATTEMPTS):
        assert sign_in(client, "root", "wrong").status_code == 200
    # when the right password comes next
    response = sign_in(client, "root", PASSWORD)
    # then it is not even checked
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= settings.LOGIN_THROTTLE_SECONDS
    assert "Too many failed sign-ins" in response.content.decode()
    assert "_auth_user_id" not in client.session
    # and others are not locked out by it
    assert sign_in(Client(), "root", PASSWORD, address="10.0.0.2").status_code == 302
    assert sign_in(Client(), "someone-else", "wrong").status_code == 200


def test_a_successful_sign_in_clears_the_count(superuser, settings):
    client = Client()
    for _ in range(settings.LOGIN_THROTTLE_ATTEMPTS - 1):
        sign_in(client, "root", "wrong")
    assert sign_in(client, "root", PASSWORD).status_code == 302
    for _ in range(settings.LOGIN_THROTTLE_ATTEMPTS - 1):
        assert sign_in(Client(), "root", "wrong").status_code == 200
    assert sign_in(Client(), "root", PASSWORD).status_code == 302


def test_throttling_counts_usernames_case_insensitively(superuser, settings):
    for index in range(settings.LOGIN_THROTTLE_ATTEMPTS):
        sign_in(Client(), "ROOT" if index % 2 else "root", "wrong")
    assert sign_in(Client(), "Root", PASSWORD).status_code == 429


def test_a_broken_throttle_cache_does_not_lock_anybody_out(superuser, monkeypatch):
    def broken(*args, **kwargs):
        raise ConnectionError("cache down")

    cache = caches["login_throttle"]
    for name in ("get", "add", "incr", "delete", "delete_many"):
        monkeypatch.setattr(cache, name, broken)
    assert sign_in(Client(), "root", "wrong").status_code == 200
    assert sign_in(Client(), "root", PASSWORD).status_code == 302


# --- CSRF -----------------------------------------------------------------------------------


@pytest.fixture
def portal_data(make_hub, superuser):
    hub, _ = make_hub()
    submission = submission_receive(hub=hub, payload=komo_entry()).submission
    return hub, submission


def test_every_post_form_carries_a_csrf_token_and_is_refused_without_it(portal_data, superuser):
    # given every POST form a signed-in superuser can reach
    reader = Client()
    reader.force_login(superuser)
    forms = post_forms(crawl(reader))
    assert len(forms) >= 5, [form.action for form in forms]
    attacker = Client(enforce_csrf_checks=True)
    attacker.force_login(superuser)
    refused = []
    for form in forms:
        assert "csrfmiddlewaretoken" in form.fields, f"{form.action} on {form.page}"
        data = {k: v for k, v in form.fields.items() if k != "csrfmiddlewaretoken"}
        # when it is posted without the token (as a forged cross-site request would be)
        response = attacker.post(form.action, data)
        # then it is refused
        assert response.status_code == 403, f"{form.action} on {form.page}"
        refused.append(form.action)
    print(f"CSRF: {len(refused)} forms refused without a token")


def test_sign_in_form_needs_the_csrf_token(superuser):
    client = Client(enforce_csrf_checks=True)
    client.get("/admin/login/")
    response = client.post("/admin/login/", {"username": "root", "password": PASSWORD})
    assert response.status_code == 403


def test_the_webhook_needs_no_csrf_token(make_hub):
    hub, token = make_hub()
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        f"/api/v1/hubs/{hub.slug}/submissions",
        data=komo_entry(),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == 202


# --- headers --------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/", "/admin/", "/admin/login/", "/api/schema/", "/healthz"])
def test_security_headers_and_csp_on_pages(signed_in, url):
    response = signed_in.get(url)
    csp = response["Content-Security-Policy"]
    for directive in ("default-src 'self'", "script-src 'self'", "frame-ancestors 'none'",
                      "form-action 'self'", "base-uri 'self'"):
        assert directive in csp
    assert "unsafe-eval" not in csp and "'unsafe-inline'" not in csp.split("script-src")[1]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


def test_security_headers_on_webhook_answers(make_hub):
    hub, _ = make_hub()
    response = Client().post(f"/api/v1/hubs/{hub.slug}/submissions", data={},
                             content_type="application/json")
    assert response.status_code == 401
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" in response


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DEBUG": "false",
        "SECRET_KEY": "check-deploy-" + Fernet.generate_key().decode() * 2,
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "ALLOWED_HOSTS": "portal.example.com",
        "PORTAL_VAR_DIR": str(tmp_path),
        # One web process: without REDIS_URL more would be warned about (portal.W001).
        "WEB_CONCURRENCY": "1",
    }
    for name in ("REDIS_URL", "SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE",
                 "SECURE_HSTS_SECONDS", "Q_SYNC"):
        env.pop(name, None)
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


# --- escaping -------------------------------------------------------------------------------


@pytest.fixture
def hostile_data(make_hub, superuser):
    """A hub and submissions whose every shown value carries HTML/JS."""
    hub, _ = make_hub(name=f"Summer {SCRIPT}")
    payload = komo_entry(
        id=f"komo-{SVG}",
        first_name=SCRIPT,
        last_name=IMAGE,
        email=f'"{IMAGE}"@example.com',
        postcode=SVG,
        card_name=SCRIPT,
    )
    delivered = submission_receive(hub=hub, payload=payload).submission
    ignored = submission_receive(hub=hub, payload=komo_entry(event=f"Card{SCRIPT}")).submission
    failed = submission_receive(hub=hub, payload=komo_entry(first_name=IMAGE)).submission
    Submission.objects.filter(pk=failed.pk).update(
        status=SubmissionStatus.FAILED,
        status_reason=f"Braze said {SCRIPT}",
        problems=[{"field": SVG, "attribute": IMAGE, "code": "x", "message": SCRIPT,
                   "held": False}],
    )
    attempt = DeliveryAttempt.objects.create(
        hub=hub, started_at=timezone.now(), endpoint=hub.connection.rest_endpoint,
        request_body={"attributes": [{"first_name": SCRIPT}]}, status_code=400,
        outcome="bad_request", message=f"Invalid {IMAGE}",
        response_body=f'{{"message": "{SCRIPT}"}}',
    )
    AttemptItem.objects.create(attempt=attempt, submission=failed, result=ItemResult.FAILED,
                               error=f"attributes[0]: {SVG}")
    ConfigChange.objects.create(hub=hub, hub_slug=hub.slug, action="changed",
                                summary=f"renamed to {SCRIPT}", changes={"name": [SCRIPT, IMAGE]})
    return hub, [delivered, ignored, failed]


def test_html_in_values_is_escaped_on_every_page(hostile_data, signed_in):
    # given
    hub, submissions = hostile_data
    start = [
        "/", "/admin/", f"/hubs/{hub.slug}/", f"/hubs/{hub.slug}/preview/",
        *[f"/submissions/{s.public_id}/" for s in submissions],
        *[f"/admin/integrations/submission/{s.pk}/change/" for s in submissions],
        "/admin/integrations/submission/", "/admin/integrations/deliveryattempt/",
        "/admin/integrations/configchange/",
    ]
    # when every reachable page is opened
    pages = crawl(signed_in, start=start)
    # then no value is rendered as markup anywhere
    assert len(pages) >= 20
    for page in pages:
        for marker in RAW_MARKERS:
            assert marker not in page.html, f"{marker} unescaped on {page.url}"
    showing = [p.url for p in pages if ESCAPED_SCRIPT in p.html]
    for url in start[2:]:
        assert url in showing, f"{url} does not show the hostile values at all"
    print(f"escaping: {len(pages)} pages checked, {len(showing)} show hostile values escaped")

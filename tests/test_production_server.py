"""The portal as an operator runs it: gunicorn with portal/gunicorn.conf.py, production settings
(DEBUG off, behind TLS: the proxy sends X-Forwarded-Proto), after `collectstatic`. The admin's and
the portal's CSS are served (200, text/css, cached for a year, gzip), the pages that use them
load, /metrics adds up every worker, and gunicorn's and Django's log lines are JSON and scrubbed."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet

BASE_DIR = Path(__file__).resolve().parent.parent
PASSWORD = "a-long-operator-password-4711"
METRICS_TOKEN = "scrape-token-for-the-test-0123456789"
PATH_TOKEN = "kbp_gunicornPathTokenSecret0123456789"
TLS = {"X-Forwarded-Proto": "https"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    var = tmp_path_factory.mktemp("production")
    port = _free_port()
    env = {
        key: value for key, value in os.environ.items()
        if not key.startswith(("DATABASE_URL", "REDIS_URL", "SECURE_", "SESSION_COOKIE",
                               "CSRF_COOKIE", "Q_", "WEBHOOK_", "BRAZE_", "PROMETHEUS_",
                               "DJANGO_SETTINGS_MODULE", "DEBUG", "LOG_"))
    }
    env.update({
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DEBUG": "false",
        "SECRET_KEY": "production-test-" + Fernet.generate_key().decode(),
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "ALLOWED_HOSTS": "127.0.0.1",
        "PORTAL_VAR_DIR": str(var),
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "2",
        "GUNICORN_ACCESSLOG": "-",
        "GUNICORN_LOGLEVEL": "info",
        "LOG_FORMAT": "json",
        "METRICS_TOKEN": METRICS_TOKEN,
        "DJANGO_SUPERUSER_PASSWORD": PASSWORD,
    })
    manage = [sys.executable, "manage.py"]
    for command in (["collectstatic", "--noinput", "-v0"], ["migrate", "-v0"],
                    ["createsuperuser", "--noinput", "--username", "operator",
                     "--email", "operator@example.com"]):
        subprocess.run([*manage, *command], cwd=BASE_DIR, env=env, check=True, timeout=300,
                       capture_output=True)
    log = (var / "gunicorn.log").open("w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "portal/gunicorn.conf.py", "portal.wsgi"],
        cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                if requests.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
        else:
            pytest.fail("gunicorn did not start: " + (var / "gunicorn.log").read_text()[-3000:])
        yield url, var / "gunicorn.log"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        log.close()


def _cookies(response: requests.Response) -> dict[str, str]:
    # The cookies are Secure (behind TLS); the test talks plain HTTP to gunicorn, as the proxy
    # does, so it carries them by hand.
    return {name: value for name, value in response.cookies.items()}


def _cookie_header(cookies: dict[str, str]) -> str:
    return "; ".join(f"{k}={v}" for k, v in cookies.items())


def _stylesheets(html: str) -> list[str]:
    return re.findall(r'<link rel="stylesheet"[^>]*href="([^"]+)"', html)


def _assert_served_css(url: str, href: str) -> None:
    response = requests.get(url + href, headers={**TLS, "Accept-Encoding": "gzip"}, timeout=5)
    assert response.status_code == 200, href
    assert response.headers["Content-Type"].startswith("text/css"), href
    assert response.headers["Content-Encoding"] == "gzip", href
    assert "max-age=315360000" in response.headers["Cache-Control"], href
    assert "immutable" in response.headers["Cache-Control"], href
    assert len(response.text) > 100


def test_admin_and_portal_css_are_served_and_the_pages_load(server):
    url, _log = server
    # the admin's login page and its CSS
    login = requests.get(f"{url}/admin/login/", headers=TLS, timeout=5)
    assert login.status_code == 200
    admin_css = [href for href in _stylesheets(login.text) if "/static/admin/css/" in href]
    assert any(re.search(r"/static/admin/css/base\.[0-9a-f]{12}\.css$", h) for h in admin_css)
    for href in admin_css:
        _assert_served_css(url, href)
    # the names the issue reported as 404 answer too (unhashed: cached briefly)
    for path in ("/static/admin/css/base.css", "/static/integrations/portal.css"):
        response = requests.get(url + path, headers=TLS, timeout=5)
        assert response.status_code == 200, path
        assert response.headers["Content-Type"].startswith("text/css")
    # sign in, then the portal's page and its CSS
    cookies = _cookies(login)
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
    signed_in = requests.post(
        f"{url}/admin/login/?next=/",
        data={"username": "operator", "password": PASSWORD, "csrfmiddlewaretoken": csrf},
        headers={**TLS, "Cookie": _cookie_header(cookies), "Origin": url.replace("http:", "https:"),
                 "Referer": url.replace("http:", "https:") + "/admin/login/"},
        allow_redirects=False, timeout=5,
    )
    assert signed_in.status_code == 302, signed_in.text[:500]
    cookies.update(_cookies(signed_in))
    page = requests.get(f"{url}/", headers={**TLS, "Cookie": _cookie_header(cookies)}, timeout=5)
    assert page.status_code == 200
    portal_css = [h for h in _stylesheets(page.text) if "/static/integrations/portal." in h]
    assert portal_css, _stylesheets(page.text)
    for href in portal_css:
        _assert_served_css(url, href)


def test_metrics_add_up_the_workers_and_are_closed_without_the_token(server):
    url, _log = server
    assert requests.get(f"{url}/metrics", headers=TLS, timeout=5).status_code == 403
    for _ in range(20):  # spread over both workers
        requests.post(f"{url}/api/v1/ingest/{PATH_TOKEN}", json={}, headers=TLS, timeout=5)
    text = requests.get(f"{url}/metrics", timeout=5,
                        headers={**TLS, "Authorization": f"Bearer {METRICS_TOKEN}"}).text
    assert 'portal_webhooks_total{code="401",hub="-"} 20.0' in text
    assert "portal_webhook_duration_seconds_count 20.0" in text


def test_gunicorn_and_django_lines_are_json_and_scrubbed(server):
    url, log = server
    response = requests.post(f"{url}/api/v1/ingest/{PATH_TOKEN}", json={},
                             headers={**TLS, "X-Request-ID": "proxy-id-42"}, timeout=5)
    assert response.status_code == 401
    assert response.headers["X-Request-ID"] == "proxy-id-42"
    time.sleep(0.3)
    text = log.read_text()
    assert PATH_TOKEN not in text
    records = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert all(line.startswith("{") for line in text.splitlines() if line.strip())
    [unauthorized] = [r for r in records if r["logger"] == "django.request"
                      and r.get("request_id") == "proxy-id-42"]
    assert unauthorized["message"] == "Unauthorized: /api/v1/ingest/[redacted]"
    access = [r for r in records if r["logger"] == "gunicorn.access"]
    assert any("/api/v1/ingest/[redacted]" in r["message"] for r in access)
    assert any(r["logger"] == "gunicorn.error" for r in records)  # "Booting worker …"

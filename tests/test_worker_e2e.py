"""End to end with a real worker: webhook over HTTP → database → django-q2 qcluster subprocess →
Braze sandbox over HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests
from django.db import connection

from tests.conftest import komo_entry

BASE_DIR = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def database_url() -> str:
    """The URL of the test database this process uses, for the worker subprocess."""
    settings_dict = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings_dict['NAME']}"
    user = settings_dict.get("USER") or ""
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{user}@{host}:{port}/{settings_dict['NAME']}"


@pytest.fixture
def qcluster(monkeypatch):
    yield from _qcluster(monkeypatch)


def _qcluster(monkeypatch, **extra_env: str):
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", False)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings_test",
        "Q_SYNC": "false",
        "DATABASE_URL": database_url(),
        "Q_WORKERS": "2",
        **extra_env,
    }
    log = tempfile.TemporaryFile()  # noqa: SIM115 (closed after the process ends)
    process = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    yield process
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    log.seek(0)
    output = log.read().decode(errors="replace")
    log.close()
    print(output[-3000:])


def wait_for(condition, seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_posted_submission_reaches_the_sandbox_through_a_real_qcluster(
    make_hub, sandbox, live_server, qcluster
):
    # given
    hub, token = make_hub(endpoint=sandbox.url)
    payload = komo_entry(email="e2e.person@example.com")
    # when
    response = requests.post(
        f"{live_server.url}/api/v1/hubs/{hub.slug}/submissions",
        json=payload,
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    # then
    assert response.status_code == 202
    assert wait_for(lambda: len(sandbox.profiles()) == 1), "the profile never reached the sandbox"
    [profile] = sandbox.profiles()
    assert profile["attributes"]["email"] == "e2e.person@example.com"
    from integrations.models import Submission, SubmissionStatus

    assert wait_for(lambda: Submission.objects.get().status == SubmissionStatus.DELIVERED)


COALESCE = "0.3"


@pytest.fixture
def coalescing_qcluster(monkeypatch, settings):
    """A cluster and this process's web side with the production-style coalescing of delivery
    signals on, and no sweep: whatever arrives must arrive through the signals and the linger."""
    from django_q.models import Schedule

    Schedule.objects.all().delete()
    settings.WEBHOOK_COALESCE_SECONDS = float(COALESCE)
    yield from _qcluster(monkeypatch, WEBHOOK_COALESCE_SECONDS=COALESCE)


def test_a_burst_with_coalesced_signals_is_all_delivered_without_the_sweep(
    make_hub, sandbox, live_server, coalescing_qcluster
):
    # given
    from integrations.models import Submission, SubmissionStatus

    hub, token = make_hub(endpoint=sandbox.url)
    url = f"{live_server.url}/api/v1/hubs/{hub.slug}/submissions"
    headers = {"Authorization": f"Bearer {token}"}
    # when a burst arrives: most of its webhooks skip the signal (one per 0.3 s is sent)
    with requests.Session() as session:
        for number in range(60):
            payload = komo_entry(email=f"burst.{number}@example.com")
            assert session.post(url, json=payload, headers=headers, timeout=10).status_code == 202
            if number % 20 == 19:
                time.sleep(0.35)  # three bursts: each one starts a new signal interval
    # then every one is delivered, well before any sweep would have run
    delivered = lambda: Submission.objects.filter(status=SubmissionStatus.DELIVERED).count()  # noqa: E731
    assert wait_for(lambda: delivered() == 60, seconds=20), f"{delivered()} of 60 delivered"

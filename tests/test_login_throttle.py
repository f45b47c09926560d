"""Sign-in throttling (issue 10): look-alike usernames share the bucket of the username Django
signs in, and the count is shared by every process, with or without Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import caches
from django.db import connection
from django.test import Client

BASE_DIR = Path(__file__).resolve().parent.parent
PASSWORD = "correct-horse-battery-9"
# Full-width c, mathematical bold c, a ligature-free compatibility form and a padded one: the
# admin's sign-in form (NFKC, stripped) authenticates each of them as "carol".
LOOK_ALIKES = ["ｃarol", "𝐜arol", "ｃａｒｏｌ", " carol ", "CAROL"]


@pytest.fixture
def shared_counts(transactional_db):
    """The database cache's table is not emptied between transactional tests: empty it."""
    yield
    caches["login_throttle"].clear()


@pytest.fixture
def carol(db):
    return get_user_model().objects.create_user("carol", "carol@example.com", PASSWORD)


def sign_in(client: Client, username: str, password: str, address: str = "10.0.0.9"):
    return client.post(
        "/admin/login/?next=/admin/",
        {"username": username, "password": password},
        REMOTE_ADDR=address,
    )


@pytest.mark.parametrize("username", ["ｃarol", "𝐜arol", "ｃａｒｏｌ"])
def test_look_alikes_authenticate_as_carol(carol, username):
    # The premise of the defect: Django's sign-in form normalises these to "carol".
    carol.is_staff = True
    carol.save()
    assert sign_in(Client(), username, PASSWORD).status_code == 302


@pytest.mark.parametrize("username", LOOK_ALIKES)
def test_every_look_alike_is_counted_in_carols_bucket(username):
    from integrations.middleware import login_throttle_username

    assert login_throttle_username(username) == login_throttle_username("carol")


@pytest.mark.django_db
def test_look_alikes_do_not_get_fresh_guesses(carol, settings):
    carol.is_staff = True
    carol.save()
    # given five failures spread over look-alikes
    for index in range(settings.LOGIN_THROTTLE_ATTEMPTS):
        response = sign_in(Client(), LOOK_ALIKES[index % len(LOOK_ALIKES)], "wrong")
        assert response.status_code == 200
    # then neither carol nor another look-alike gets a sixth guess, right or wrong
    assert sign_in(Client(), "carol", PASSWORD).status_code == 429
    for username in LOOK_ALIKES:
        assert sign_in(Client(), username, PASSWORD).status_code == 429, username


def _database_url() -> str:
    settings_dict = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings_dict['NAME']}"
    user, password = settings_dict["USER"], settings_dict["PASSWORD"]
    auth = f"{user}:{password}@" if password else f"{user}@"
    return f"postgres://{auth}{settings_dict['HOST']}:{settings_dict['PORT']}/{settings_dict['NAME']}"


SECOND_PROCESS = textwrap.dedent(
    """
    import json, sys
    import django
    django.setup()
    from django.test import Client
    from django.test.utils import setup_test_environment
    setup_test_environment()
    statuses = []
    for password in json.loads(sys.argv[1]):
        response = Client().post(
            "/admin/login/?next=/admin/",
            {"username": "carol", "password": password},
            REMOTE_ADDR="10.0.0.9",
        )
        statuses.append(response.status_code)
    print(json.dumps(statuses))
    """
)


def test_the_count_is_shared_by_processes_without_redis(shared_counts, carol, settings):
    carol.is_staff = True
    carol.save()
    # given three failures in this process
    for _ in range(3):
        assert sign_in(Client(), "carol", "wrong").status_code == 200
    # when another process (another gunicorn worker) gets two more and then the right password
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings_test",
        "DATABASE_URL": _database_url(),
    }
    result = subprocess.run(
        [sys.executable, "-c", SECOND_PROCESS, json.dumps(["wrong", "wrong", PASSWORD])],
        cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    # then the sixth attempt is refused there, and here
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [200, 200, 429]
    assert sign_in(Client(), "carol", PASSWORD).status_code == 429

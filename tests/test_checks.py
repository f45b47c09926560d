"""manage.py check warns about production setups that would lose or delay work (one test per
warning: it fires for the bad setup, names the fix, and stays quiet for the sound one)."""

from __future__ import annotations

import pytest
from django.core.checks import run_checks


def ids(settings) -> set[str]:
    return {message.id for message in run_checks() if message.id.startswith("portal.")}


@pytest.fixture
def sound(settings):
    """A sound production setup: Redis, its broker, kept connections without PgBouncer."""
    settings.DEBUG = False
    settings.REDIS_URL = "redis://127.0.0.1:6379/0"
    settings.Q_BROKER = "redis"
    settings.WEB_CONCURRENCY = 6
    settings.PGBOUNCER_POOL_MODE = ""
    settings.WEBHOOK_COALESCE_SECONDS = 0.1
    settings.DELIVERY_LINGER_SECONDS = None
    return settings


def test_a_sound_production_setup_has_no_portal_warning(sound):
    assert ids(sound) == set()


def test_several_web_processes_without_redis(sound):
    sound.REDIS_URL = ""
    sound.Q_BROKER = "orm"
    [warning] = [m for m in run_checks() if m.id == "portal.W001"]
    assert "REDIS_URL" in warning.hint
    sound.WEB_CONCURRENCY = 1  # one process counts alone anyway
    assert ids(sound) == set()


def test_orm_broker_with_the_redis_cache(sound):
    sound.Q_BROKER = "orm"
    [warning] = [m for m in run_checks() if m.id == "portal.W002"]
    assert "Q_BROKER" in warning.hint


def test_kept_connections_through_pgbouncer_in_transaction_mode(sound, monkeypatch):
    sound.PGBOUNCER_POOL_MODE = "transaction"
    monkeypatch.setitem(sound.DATABASES["default"], "CONN_MAX_AGE", 60)
    [warning] = [m for m in run_checks() if m.id == "portal.W003"]
    assert "CONN_MAX_AGE=0" in warning.hint
    monkeypatch.setitem(sound.DATABASES["default"], "CONN_MAX_AGE", 0)
    assert ids(sound) == set()
    sound.PGBOUNCER_POOL_MODE = "session"
    monkeypatch.setitem(sound.DATABASES["default"], "CONN_MAX_AGE", 60)
    assert ids(sound) == set()


def test_coalescing_longer_than_the_delivery_linger(sound):
    sound.WEBHOOK_COALESCE_SECONDS = 0.5
    sound.DELIVERY_LINGER_SECONDS = 0.2
    [warning] = [m for m in run_checks() if m.id == "portal.W004"]
    assert "DELIVERY_LINGER_SECONDS to at least 0.55" in warning.hint
    sound.DELIVERY_LINGER_SECONDS = 0.55
    assert ids(sound) == set()


def test_development_mode_is_not_warned_about(sound):
    sound.DEBUG = True
    sound.REDIS_URL = ""
    sound.Q_BROKER = "orm"
    sound.PGBOUNCER_POOL_MODE = "transaction"
    assert ids(sound) == set()


def test_the_linger_setting_is_what_delivery_runs_wait(sound):
    from integrations.services import delivery

    sound.DELIVERY_LINGER_SECONDS = 0.7
    assert delivery._linger_seconds() == 0.7

"""A database dump after intake, delivery and transactional email holds none of the people's
emails (whole or before the @), phones (as typed or E.164) or names: ``dumpdata`` and, on
PostgreSQL, ``pg_dump``. The counts of hits are printed (the closing note's plaintext scan)."""

from __future__ import annotations

import io
import os
import shutil
import subprocess

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection

from integrations.models import AttemptItem, DeliveryAttempt, TransactionalSend
from integrations.services.braze_api import braze_client
from tests.privacy_data import HUB_CHANGES, plaintexts, populate


@pytest.fixture(autouse=True)
def _fresh_client():
    cache.clear()
    braze_client.cache_clear()
    yield
    braze_client.cache_clear()


def hits(dump: str) -> dict[str, int]:
    text = dump.lower()
    return {needle: text.count(needle.lower()) for needle in plaintexts()}


def populated(make_hub, sandbox) -> None:
    hub, _ = make_hub(endpoint=sandbox.url, **HUB_CHANGES)
    hub.skip_unchanged = True
    hub.save()
    populate(hub)
    assert DeliveryAttempt.objects.exists() and AttemptItem.objects.exists()
    assert TransactionalSend.objects.filter(status="sent").exists()


@pytest.mark.django_db
def test_dumpdata_after_intake_holds_no_personal_data(make_hub, sandbox):
    populated(make_hub, sandbox)
    out = io.StringIO()
    call_command("dumpdata", stdout=out)
    dump = out.getvalue()
    assert "integrations.submission" in dump and len(dump) > 10_000
    found = hits(dump)
    print(f"dumpdata: {len(dump)} characters, plaintext hits {sum(found.values())}")
    assert not {needle: n for needle, n in found.items() if n}

    # the scan does find a person kept in plain text (a row from before encryption)
    from integrations.models import Submission

    first = Submission.objects.first()
    Submission.objects.filter(pk=first.pk).update(payload_legacy=first.payload)
    out = io.StringIO()
    call_command("dumpdata", "integrations.submission", stdout=out)
    assert sum(hits(out.getvalue()).values()) > 0


def _is_postgres() -> bool:
    return os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))


@pytest.mark.skipif(not _is_postgres(), reason="pg_dump needs DATABASE_URL=postgres://…")
@pytest.mark.skipif(shutil.which("pg_dump") is None, reason="pg_dump is not installed")
@pytest.mark.django_db(transaction=True)  # committed, so another connection (pg_dump) sees it
def test_pg_dump_after_intake_holds_no_personal_data(make_hub, sandbox):
    populated(make_hub, sandbox)
    params = connection.settings_dict
    env = {**os.environ, "PGPASSWORD": params.get("PASSWORD") or ""}
    command = ["pg_dump", "--no-owner", "-h", params.get("HOST") or "127.0.0.1",
               "-p", str(params.get("PORT") or 5432), "-U", params.get("USER") or "postgres",
               params["NAME"]]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-500:]
    dump = result.stdout
    assert "COPY public.integrations_submission" in dump
    found = hits(dump)
    print(f"pg_dump: {len(dump)} characters, plaintext hits {sum(found.values())}")
    assert not {needle: n for needle, n in found.items() if n}

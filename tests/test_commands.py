"""hub_import, hub_export, hub_token, rotate_encryption_key, and the start-up checks."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.db import connection

from integrations.models import BrazeConnection, ConfigChange, Hub
from tests.conftest import DEFAULT_CONFIG, DEMO_KEY

BASE_DIR = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def write_config(tmp_path, **changes) -> Path:
    config = {
        **json.loads(json.dumps(DEFAULT_CONFIG)),
        "braze": {"rest_endpoint": "https://rest.fra-01.braze.eu", "api_key": DEMO_KEY},
        **changes,
    }
    path = tmp_path / "hub.json"
    path.write_text(json.dumps(config))
    return path


def test_import_creates_then_updates_by_slug(tmp_path):
    assert "Created hub summer-comp" in run("hub_import", str(write_config(tmp_path)))
    assert "Updated hub summer-comp" in run("hub_import", str(write_config(tmp_path, name="New")))
    hub = Hub.objects.get()
    assert hub.name == "New"
    assert hub.mappings.count() == len(DEFAULT_CONFIG["mappings"])
    assert hub.connection.api_key == DEMO_KEY
    assert list(ConfigChange.objects.values_list("action", flat=True)) == [
        "import-updated",
        "imported",
    ]
    assert ConfigChange.objects.first().changes["name"] == ["Summer competition", "New"]


def test_export_round_trips_and_masks_the_key(tmp_path):
    path = write_config(tmp_path)
    run("hub_import", str(path))
    exported = json.loads(run("hub_export", "summer-comp"))
    assert exported["braze"] == {
        "rest_endpoint": "https://rest.fra-01.braze.eu",
        "api_key": "********",
    }
    assert DEMO_KEY not in json.dumps(exported)
    # import of the export (masked key) keeps the stored key
    path.write_text(json.dumps(exported))
    run("hub_import", str(path))
    assert Hub.objects.get().connection.api_key == DEMO_KEY
    original = {k: v for k, v in DEFAULT_CONFIG.items()}
    for key in ("slug", "name", "identity", "events", "default_phone_region"):
        assert exported[key] == original[key]
    assert [m["attribute"] for m in exported["mappings"]] == [
        m["attribute"] for m in DEFAULT_CONFIG["mappings"]
    ]


def test_import_refuses_invalid_config_and_writes_nothing(tmp_path):
    bad = write_config(tmp_path, mappings=[{"field": "first", "attribute": "First_Name"}])
    with pytest.raises(CommandError, match="first_name"):
        run("hub_import", str(bad))
    assert not Hub.objects.exists()


def test_import_refuses_a_non_braze_endpoint(tmp_path):
    bad = write_config(
        tmp_path, braze={"rest_endpoint": "https://evil.example.com", "api_key": DEMO_KEY}
    )
    with pytest.raises(CommandError, match="not a Braze REST endpoint"):
        run("hub_import", str(bad))
    assert not Hub.objects.exists()


def test_import_of_bad_json_names_the_problem(tmp_path):
    path = tmp_path / "hub.json"
    path.write_text("{nope")
    with pytest.raises(CommandError, match="not valid JSON"):
        run("hub_import", str(path))


def test_export_of_unknown_slug_fails_clearly():
    with pytest.raises(CommandError, match="No hub with slug nope"):
        run("hub_export", "nope")


def test_hub_token_prints_the_token_alone_on_the_last_line(tmp_path, client):
    run("hub_import", str(write_config(tmp_path)))
    token = run("hub_token", "summer-comp").strip().splitlines()[-1]
    assert token.startswith("kbp_") and " " not in token
    response = client.post(
        "/api/v1/hubs/summer-comp/submissions",
        data="{}",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == 400  # authenticated, then the body is refused


def test_api_key_is_encrypted_at_rest(tmp_path):
    run("hub_import", str(write_config(tmp_path)))
    with connection.cursor() as cursor:
        cursor.execute("SELECT api_key FROM integrations_brazeconnection")
        [(raw,)] = cursor.fetchall()
    assert DEMO_KEY not in raw
    assert BrazeConnection.objects.get().api_key == DEMO_KEY
    assert BrazeConnection.objects.get().api_key_last4 == DEMO_KEY[-4:]


def test_rotate_encryption_key_re_encrypts_under_the_new_key(tmp_path, settings):
    run("hub_import", str(write_config(tmp_path)))
    old_keys = list(settings.FIELD_ENCRYPTION_KEYS)
    new_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new_key, *old_keys]
    assert "Re-encrypted 1 value(s)" in run("rotate_encryption_key")
    settings.FIELD_ENCRYPTION_KEYS = [new_key]  # the old key is gone
    assert BrazeConnection.objects.get().api_key == DEMO_KEY


def test_start_up_fails_clearly_without_encryption_keys_outside_debug():
    env = {k: v for k, v in os.environ.items() if k not in ("FIELD_ENCRYPTION_KEYS",)}
    env.update(
        {"DJANGO_SETTINGS_MODULE": "portal.settings", "DEBUG": "false", "SECRET_KEY": "x" * 50}
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "FIELD_ENCRYPTION_KEYS must be set when DEBUG is off" in result.stderr

"""Logs an operator can ship: LOG_FORMAT=json gives one JSON object per line with the request id
and the hub, and tokens, keys and secrets are scrubbed whichever logger wrote the line (Django's
own django.request and django.server included) and whichever handler prints it."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

from integrations.logging import PlainFormatter, RequestContextFilter, json_formatter_class

BASE_DIR = Path(__file__).resolve().parent.parent
TOKEN = "kbp_Zq3xY7pathTokenSecret0123456789"
SECRETS = (TOKEN, "sk-live-bearer-secret-42", "braze-api-key-secret-77", "signing-s3cr3t-99",
           "kbs_signingSecretValue0123456789")

EMIT = f"""
import logging
logging.getLogger("django.request").warning("Bad Request: %s", "/api/v1/ingest/{TOKEN}")
logging.getLogger("django.server").info('"POST /api/v1/ingest/{TOKEN} HTTP/1.1" 401 54')
logging.getLogger("django_q").info("task with Authorization: Bearer sk-live-bearer-secret-42")
logging.getLogger("gunicorn.error").error("api_key=braze-api-key-secret-77")
logging.getLogger("integrations.services.delivery").info("secret: signing-s3cr3t-99")
logging.getLogger().warning("new secret kbs_signingSecretValue0123456789")
try:
    raise ValueError("boom /api/v1/ingest/{TOKEN}")
except ValueError:
    logging.getLogger("django.request").exception("Internal Server Error: /api/v1/ingest/x")
"""


def _emit_in_a_fresh_process(log_format: str) -> str:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings_test",
        "LOG_FORMAT": log_format,
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", EMIT],
        cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stderr


def test_json_format_is_one_object_per_line_from_every_logger_and_scrubbed():
    output = _emit_in_a_fresh_process("json")
    lines = [line for line in output.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    loggers = {r["logger"] for r in records}
    assert {"django.request", "django.server", "django_q", "gunicorn.error",
            "integrations.services.delivery", "root"} <= loggers
    for record in records:
        assert {"time", "level", "logger", "message", "request_id", "hub"} <= set(record)
    [failure] = [r for r in records if "exc_info" in r]
    assert "ValueError" in failure["exc_info"]
    for secret in SECRETS:
        assert secret not in output
    assert output.count("[redacted]") >= 7


def test_plain_format_is_scrubbed_from_every_logger_too():
    output = _emit_in_a_fresh_process("plain")
    assert "Bad Request: /api/v1/ingest/[redacted]" in output
    for secret in SECRETS:
        assert secret not in output


@pytest.fixture
def captured():
    """What the JSON formatter prints for django.request and the root logger in this process."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(json_formatter_class()())
    handler.addFilter(RequestContextFilter())
    loggers = [logging.getLogger("django.request"), logging.getLogger()]
    for logger in loggers:
        logger.addHandler(handler)
    yield stream
    for logger in loggers:
        logger.removeHandler(handler)


def _lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


@pytest.mark.django_db
def test_djangos_bad_request_line_for_a_path_token_is_scrubbed_and_has_the_request_id(captured):
    response = Client().post(f"/api/v1/ingest/{TOKEN}", data={}, content_type="application/json",
                             HTTP_X_REQUEST_ID="lb-7f3a9c")
    assert response.status_code == 401
    assert response["X-Request-ID"] == "lb-7f3a9c"
    [line] = [r for r in _lines(captured) if r["logger"] == "django.request"]
    assert line["message"] == "Unauthorized: /api/v1/ingest/[redacted]"
    assert line["request_id"] == "lb-7f3a9c"
    assert line["hub"] == "-"  # not authenticated: no hub
    assert "request" not in line  # the request object's repr would hold the path
    assert TOKEN not in captured.getvalue()


def test_lines_after_authentication_name_the_hub(make_hub, captured):
    hub, token = make_hub()
    response = Client().post(f"/api/v1/hubs/{hub.slug}/submissions", data="{not json",
                             content_type="application/json",
                             HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 400
    [line] = [r for r in _lines(captured) if r["logger"] == "django.request"]
    assert line["hub"] == hub.slug
    assert len(line["request_id"]) == 32  # generated: none was given
    assert line["request_id"] == response["X-Request-ID"]
    assert token not in captured.getvalue()


@pytest.mark.django_db
@pytest.mark.parametrize("given", ["", "x" * 129, "id with spaces", "id\nInjected: yes", "ü-id"])
def test_an_insane_request_id_is_replaced(given):
    response = Client().get("/healthz", HTTP_X_REQUEST_ID=given)
    assert response["X-Request-ID"] != given
    assert len(response["X-Request-ID"]) == 32


def test_lines_outside_a_request_carry_dashes(captured):
    logging.getLogger("integrations.test").warning("between requests")
    [line] = _lines(captured)
    assert (line["request_id"], line["hub"]) == ("-", "-")


def test_records_are_scrubbed_for_handlers_the_portal_did_not_configure():
    # e.g. gunicorn's own handlers or a library's: the redaction happens when the record is made
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)  # plain logging.Formatter, no filter
    logger = logging.getLogger("some.library")
    logger.addHandler(handler)
    try:
        logger.warning("calling %s with Authorization: Bearer %s", f"/api/v1/ingest/{TOKEN}",
                       "sk-live-bearer-secret-42")
    finally:
        logger.removeHandler(handler)
    assert stream.getvalue().strip() == (
        "calling /api/v1/ingest/[redacted] with Authorization: Bearer [redacted]"
    )


def test_plain_formatter_names_request_and_hub():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    RequestContextFilter().filter(record)
    assert PlainFormatter().format(record).endswith("INFO x [- -] hello")

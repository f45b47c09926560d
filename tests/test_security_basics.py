"""Secrets stay out of logs; the webhook's OpenAPI description is served."""

from __future__ import annotations

import logging

import pytest

from integrations.logging import RedactSecretsFilter, redact


def test_redact_removes_path_tokens_bearer_tokens_and_api_keys():
    line = (
        '"POST /api/v1/ingest/kbp_secretTOKEN123 HTTP/1.1" Authorization: Bearer abc.def '
        'api_key="braze-key-1234"'
    )
    cleaned = redact(line)
    for secret in ("kbp_secretTOKEN123", "abc.def", "braze-key-1234"):
        assert secret not in cleaned
    assert "/api/v1/ingest/[redacted]" in cleaned


def test_log_filter_rewrites_records_with_arguments():
    record = logging.LogRecord(
        "django.server",
        logging.INFO,
        __file__,
        1,
        '"%s" %s %s',
        ("POST /api/v1/ingest/kbp_zzz HTTP/1.1", 202, 40),
        None,
    )
    RedactSecretsFilter().filter(record)
    assert "kbp_zzz" not in record.getMessage()


@pytest.mark.django_db
def test_path_token_never_reaches_the_log(make_hub, client):
    # given: the configured console handler, writing into a buffer
    import io

    [handler] = [
        h
        for h in logging.getLogger().handlers
        if isinstance(h, logging.StreamHandler)
        and any(isinstance(f, RedactSecretsFilter) for f in h.filters)
    ]
    buffer = io.StringIO()
    original = handler.setStream(buffer)
    hub, token = make_hub()
    try:
        # when: a refused request is logged by django.request with its path
        response = client.post(
            f"/api/v1/ingest/{token}x", data="{}", content_type="application/json"
        )
    finally:
        handler.setStream(original)
    # then
    assert response.status_code == 401
    assert "/api/v1/ingest/[redacted]" in buffer.getvalue()
    assert token not in buffer.getvalue()


@pytest.mark.django_db
def test_openapi_schema_describes_the_webhook(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    schema = response.json()
    assert "/api/v1/hubs/{slug}/submissions" in schema["paths"]
    assert "/api/v1/ingest/{token}" in schema["paths"]
    responses = schema["paths"]["/api/v1/hubs/{slug}/submissions"]["post"]["responses"]
    assert {"202", "200", "400", "401", "404", "413"} <= set(responses)

"""The webhook's OpenAPI description (drf-spectacular, ``/api/schema/``) and a schemathesis run
against it on the WSGI application (no network): every generated request — valid bodies, bodies
that break the schema, odd signature headers — gets an answer the schema documents, with the
documented content type and body shape, and never a 5xx."""

from __future__ import annotations

import os
from collections import Counter

import pytest
import schemathesis
from django.core.cache import caches
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis import checks

from tests.faults.report import figures_record

EXAMPLES = int(os.environ.get("SCHEMA_EXAMPLES", "60"))
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
]

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())
webhooks = schema.include(path_regex=r"^/api/v1/")
FIGURES: Counter[str] = Counter()

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module", autouse=True)
def _figures(request: pytest.FixtureRequest):
    yield
    figures_record(request.config, "schemathesis", dict(FIGURES))


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    """Calling the WSGI app directly fires request_started/finished, which would close the test
    transaction's connection (Django's own test client disconnects them the same way)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def webhook_hub(make_hub, settings):
    settings.WEBHOOK_RATE_PER_MINUTE = 0
    caches["throttle"].clear()
    return make_hub()


def _count(response) -> None:
    FIGURES["cases"] += 1
    FIGURES[f"status_{response.status_code}"] += 1
    if response.status_code >= 500:
        FIGURES["5xx"] += 1


@webhooks.parametrize()
@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_webhook_with_a_valid_token_conforms_to_its_schema(case, webhook_hub):
    hub, token = webhook_hub
    headers = {}
    if "slug" in case.path_parameters:
        case.path_parameters["slug"] = hub.slug
        headers["Authorization"] = f"Bearer {token}"
    else:
        case.path_parameters["token"] = token
    response = case.call_and_validate(headers=headers, checks=CHECKS)
    _count(response)


@webhooks.parametrize()
@settings(max_examples=max(10, EXAMPLES // 3), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_webhook_with_generated_hubs_and_tokens_conforms_to_its_schema(case, webhook_hub):
    response = case.call_and_validate(checks=CHECKS)
    _count(response)
    if case.method.upper() == "POST":  # (the coverage phase also tries other methods)
        assert response.status_code in (400, 401, 404, 413, 415), case.method


def test_schema_documents_both_webhooks_with_their_answers_and_the_signature(client):
    document = client.get("/api/schema/?format=json").json()
    for path in ("/api/v1/hubs/{slug}/submissions", "/api/v1/ingest/{token}"):
        operation = document["paths"][path]["post"]
        assert {"202", "200", "400", "401", "404", "413", "415", "429", "503"} <= set(
            operation["responses"]
        )
        assert "X-Komo-Signature" in [p["name"] for p in operation["parameters"]]
        body = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert body.endswith("/KomoWebhook")
    webhook = document["components"]["schemas"]["KomoWebhook"]
    assert set(webhook["required"]) == {"id", "event", "timestamp"}
    assert document["components"]["securitySchemes"]["ingestToken"]["scheme"] == "bearer"

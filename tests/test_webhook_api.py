"""The webhook as DRF views (integrations/apis.py, integrations/webhook/): every answer README's
"Webhook" section documents, on both endpoints, through DRF's test client, each as JSON in the
documented shape; the order of the checks; and the DRF parts on their own."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.cache import caches
from django.db import OperationalError, connection
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient, APIRequestFactory

from integrations.models import Hub, Submission, SubmissionStatus
from integrations.services.hubs import hub_signature_requirement_set, hub_signing_secret_issue
from integrations.signatures import signature_header
from integrations.webhook.io import KomoBodyParser, WebhookJSONRenderer
from integrations.webhook.serializers import KomoWebhookSerializer
from tests.conftest import komo_entry

pytestmark = pytest.mark.django_db

ENDPOINTS = ["header", "path"]


@pytest.fixture(autouse=True)
def _fresh_throttle():
    caches["throttle"].clear()
    yield
    caches["throttle"].clear()


@pytest.fixture
def api() -> APIClient:
    return APIClient()


def url(endpoint: str, hub: Hub, token: str) -> str:
    if endpoint == "path":
        return f"/api/v1/ingest/{token}"
    return f"/api/v1/hubs/{hub.slug}/submissions"


def send(api: APIClient, endpoint: str, hub: Hub, token: str, body=None, *, method: str = "post",
         content_type: str = "application/json", **headers):
    data = body if isinstance(body, bytes) else json.dumps(komo_entry() if body is None else body)
    if endpoint == "header":
        headers.setdefault("HTTP_AUTHORIZATION", f"Bearer {token}")
    return api.generic(method.upper(), url(endpoint, hub, token), data,
                       content_type=content_type, **headers)


def detail(response) -> str:
    """The refusal's problem, after checking that the answer is the documented JSON shape."""
    assert response["Content-Type"] == "application/json"
    assert response["Content-Length"] == str(len(response.content))
    data = json.loads(response.content)
    assert set(data) == {"detail"} and isinstance(data["detail"], str), data
    return data["detail"]


# --- 202 and 200 ------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_202_with_the_new_submission_then_200_with_the_same_for_a_repeat(make_hub, api, endpoint):
    # given
    hub, token = make_hub()
    body = komo_entry()
    # when
    first = send(api, endpoint, hub, token, body)
    again = send(api, endpoint, hub, token, body)
    # then
    stored = Submission.objects.get(hub=hub, komo_id=body["id"])
    assert (first.status_code, again.status_code) == (202, 200)
    assert first.json() == again.json() == {"submission": str(stored.public_id),
                                            "status": "pending"}
    assert first["Content-Type"] == "application/json"
    assert first["Content-Length"] == str(len(first.content))
    assert Submission.objects.count() == 1


def test_202_ignored_for_an_event_the_hub_does_not_deliver(make_hub, api):
    hub, token = make_hub()
    response = send(api, "header", hub, token, komo_entry(event="CardViewed"))
    assert (response.status_code, response.json()["status"]) == (202, SubmissionStatus.IGNORED)


def test_the_body_is_stored_as_the_bytes_received(make_hub, api):
    # The parser keeps the raw bytes: odd spacing and escapes survive, and a signature over them
    # (below) is over exactly what was sent.
    hub, token = make_hub()
    raw = (b'{ "id":"raw-1" ,"event":"CompetitionEntrySuccess","timestamp":"2026-01-01T00:00:00Z",'
           b'"first_name":"J\\u00f6rg"}')
    assert send(api, "header", hub, token, raw).status_code == 202
    assert Submission.objects.get(komo_id="raw-1").payload["first_name"] == "Jörg"


# --- 400 --------------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize(
    ("body", "named"),
    [
        (b"{not json", "not valid JSON"),
        (b"   ", "empty"),
        (b"", "empty"),
        (b"\xff{}", "UTF-8"),
        (b'{"id": Infinity}', "not valid JSON"),
        (b"[1]", "JSON object"),
        ({"timestamp": "2026-01-01T00:00:00Z"}, "id, event"),
        ({"id": "x", "event": "E", "timestamp": "yesterday"}, "ISO 8601"),
        ({"id": ["x"], "event": "E", "timestamp": "2026-01-01T00:00:00Z"}, "'id' must be a string"),
        ({"id": "x" * 201, "event": "E", "timestamp": "2026-01-01T00:00:00Z"}, "longer than 200"),
        ({**komo_entry(), "first_name": "a\u0000b"}, "NUL"),
    ],
)
def test_400_names_the_problem_and_stores_nothing(make_hub, api, endpoint, body, named):
    hub, token = make_hub()
    response = send(api, endpoint, hub, token, body)
    assert response.status_code == 400
    assert named in detail(response)
    assert not Submission.objects.exists()


def test_400_when_the_database_refuses_a_value(make_hub, api, monkeypatch):
    from django.db import DataError

    from integrations import apis

    def refuse(**kwargs):
        raise DataError("value too long")

    hub, token = make_hub()
    monkeypatch.setattr(apis, "submission_receive", refuse)
    response = send(api, "header", hub, token)
    assert response.status_code == 400
    assert "database refused" in detail(response)


# --- 401 --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("authorization", "named"),
    [(None, "Missing Authorization"), ("Bearer wrong", "invalid ingest token"),
     ("Basic dXNlcjpwdw==", "Missing Authorization")],
)
def test_401_for_a_missing_or_wrong_bearer_token(make_hub, api, authorization, named):
    hub, _ = make_hub()
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    response = api.post(url("header", hub, ""), komo_entry(), format="json", **headers)
    assert response.status_code == 401
    assert named in detail(response)
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert not Submission.objects.exists()


def test_401_for_a_wrong_path_token(make_hub, api):
    make_hub()
    response = api.post("/api/v1/ingest/kbp_nope", komo_entry(), format="json")
    assert response.status_code == 401
    assert "Invalid ingest token" in detail(response)
    assert response.has_header("WWW-Authenticate")


@pytest.fixture
def signed_hub(make_hub):
    hub, token = make_hub()
    secret = hub_signing_secret_issue(hub=hub)
    hub_signature_requirement_set(hub=hub, required=True)
    return Hub.objects.get(pk=hub.pk), token, secret


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_401_for_a_missing_or_wrong_signature_and_202_for_a_right_one(signed_hub, api, endpoint):
    hub, token, secret = signed_hub
    raw = json.dumps(komo_entry()).encode()
    unsigned = send(api, endpoint, hub, token, raw)
    wrong = send(api, endpoint, hub, token, raw,
                 HTTP_X_KOMO_SIGNATURE=signature_header(secret=secret, body=raw + b" "))
    signed = send(api, endpoint, hub, token, raw,
                  HTTP_X_KOMO_SIGNATURE=signature_header(secret=secret, body=raw))
    assert (unsigned.status_code, wrong.status_code, signed.status_code) == (401, 401, 202)
    assert "X-Komo-Signature" in detail(unsigned)
    assert detail(wrong) != detail(unsigned)
    assert Submission.objects.count() == 1


# --- 404, 405 ---------------------------------------------------------------------------------


@pytest.mark.parametrize("slug", ["no-such-hub", "bad%20slug", "x" * 81])
def test_404_for_an_unknown_hub_with_or_without_a_token(make_hub, api, slug):
    _, token = make_hub()
    for headers in ({"HTTP_AUTHORIZATION": f"Bearer {token}"}, {}):
        response = api.post(f"/api/v1/hubs/{slug}/submissions", komo_entry(), format="json",
                            **headers)
        assert response.status_code == 404
        assert detail(response) == "Unknown hub."


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("method", ["get", "put", "patch", "delete", "options"])
def test_405_for_anything_but_post_is_json_naming_the_method(make_hub, api, endpoint, method):
    # (It was Django's empty text/html 405 while the webhook was a plain view.)
    hub, token = make_hub()
    response = send(api, endpoint, hub, token, method=method)
    assert response.status_code == 405
    assert method.upper() in detail(response)
    assert response["Allow"] == "POST"


def test_405_comes_before_the_token(make_hub, api):
    make_hub()
    response = api.get("/api/v1/hubs/no-such-hub/submissions")
    assert response.status_code == 405
    assert "GET" in detail(response)
    assert api.head("/api/v1/ingest/nope").status_code == 405


# --- 413, 415 ---------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_413_over_the_limit_naming_it(make_hub, api, endpoint, settings):
    settings.WEBHOOK_MAX_BODY_BYTES = 500
    hub, token = make_hub()
    response = send(api, endpoint, hub, token, komo_entry(comment="x" * 600))
    assert response.status_code == 413
    assert "500 bytes" in detail(response)
    assert not Submission.objects.exists()


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x"])
def test_415_for_a_body_that_is_not_json_naming_the_type(make_hub, api, endpoint, content_type):
    hub, token = make_hub()
    response = send(api, endpoint, hub, token, b"id=1", content_type=content_type)
    assert response.status_code == 415
    assert content_type.split(";")[0] in detail(response)


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8",
                                          "application/vnd.komo+json", ""])
def test_json_types_and_no_type_at_all_are_accepted(make_hub, api, content_type):
    hub, token = make_hub()
    response = send(api, "header", hub, token, content_type=content_type)
    assert response.status_code == 202


# --- 429 --------------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_429_with_retry_after_over_the_hubs_limit(make_hub, api, endpoint):
    hub, token = make_hub()
    Hub.objects.filter(pk=hub.pk).update(intake_rate_per_minute=2)
    statuses = [send(api, endpoint, hub, token).status_code for _ in range(3)]
    refused = send(api, endpoint, hub, token)
    assert statuses == [202, 202, 429]
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert "per minute" in detail(refused)
    assert Submission.objects.count() == 2


def test_refused_bodies_count_towards_the_limit_and_the_limit_comes_before_the_body(
    make_hub, api
):
    hub, token = make_hub()
    Hub.objects.filter(pk=hub.pk).update(intake_rate_per_minute=2)
    assert send(api, "header", hub, token, b"{bad").status_code == 400
    assert send(api, "header", hub, token, b"id=1", content_type="text/plain").status_code == 415
    # the limit is spent by the two refusals; a bad body now learns nothing about itself
    assert send(api, "header", hub, token, b"{bad").status_code == 429
    assert send(api, "header", hub, token).status_code == 429


# --- 503 --------------------------------------------------------------------------------------


def _fail_everything(execute, sql, params, many, context):
    raise OperationalError("server closed the connection unexpectedly")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@override_settings(WEBHOOK_HUB_CACHE_SECONDS=0)
def test_503_with_retry_after_when_the_database_is_down(make_hub, api, endpoint):
    hub, token = make_hub()
    with connection.execute_wrapper(_fail_everything):
        response = send(api, endpoint, hub, token)
    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert "retry" in detail(response)


def test_503_when_only_the_insert_fails(make_hub, api):
    hub, token = make_hub()
    send(api, "header", hub, token)  # the hub is cached now
    with connection.execute_wrapper(_fail_everything):
        response = send(api, "header", hub, token)
    assert (response.status_code, response["Retry-After"]) == (503, "5")
    assert Submission.objects.count() == 1


# --- order ------------------------------------------------------------------------------------


def test_the_token_comes_before_the_size_and_type(make_hub, api, settings):
    settings.WEBHOOK_MAX_BODY_BYTES = 100
    hub, _ = make_hub()
    too_large = send(api, "header", hub, "wrong", komo_entry(comment="x" * 200))
    wrong_type = send(api, "header", hub, "wrong", b"a=b", content_type="text/plain")
    assert (too_large.status_code, wrong_type.status_code) == (401, 401)


def test_the_signature_comes_before_the_json(signed_hub, api):
    hub, token, _ = signed_hub
    response = send(api, "header", hub, token, b"{not json")
    assert response.status_code == 401


def test_a_previous_token_in_its_grace_period_authenticates(make_hub, api):
    from integrations.services.hubs import hub_token_issue

    hub, old = make_hub()
    hub_token_issue(hub=hub, grace=timedelta(hours=1))
    assert send(api, "path", hub, old).status_code == 202
    hub.refresh_from_db()
    hub.previous_token_expires_at = timezone.now()
    hub.save()  # (post_save empties the process's hub cache)
    assert send(api, "path", hub, old).status_code == 401


# --- language ---------------------------------------------------------------------------------


def test_the_problem_is_named_in_the_senders_language(make_hub, api):
    hub, token = make_hub()
    german = send(api, "header", hub, token, b"{bad", HTTP_ACCEPT_LANGUAGE="de")
    japanese = api.get(url("path", hub, token), HTTP_ACCEPT_LANGUAGE="ja")
    english = send(api, "header", hub, token, b"{bad")
    assert detail(german) != detail(english) and "JSON" in detail(german)
    assert "GET" in detail(japanese) and detail(japanese) != 'Method "GET" not allowed.'


# --- the DRF parts on their own ---------------------------------------------------------------


def test_the_parser_hands_on_the_bytes_unchanged():
    request = APIRequestFactory().post("/", b'{"a": 1 }', content_type="application/json")
    raw = KomoBodyParser().parse(request, parser_context={"request": request})
    assert raw == b'{"a": 1 }'


def test_the_serializer_checks_the_envelope_and_keeps_the_text():
    text = json.dumps(komo_entry())
    body = KomoWebhookSerializer(data=text.encode())
    assert body.is_valid()
    assert (body.validated_data, body.text) == (json.loads(text), text)
    missing = KomoWebhookSerializer(data=b'{"event": "E"}')
    assert not missing.is_valid()
    assert "id, timestamp" in missing.errors["detail"]


def test_the_renderer_writes_utf8_json():
    assert json.loads(WebhookJSONRenderer().render({"detail": "ü"}).decode()) == {"detail": "ü"}
    assert WebhookJSONRenderer().render(None) == b""

"""Webhook intake: every answer code, idempotency, both token styles."""

from __future__ import annotations

import json
import threading

import pytest
from django.db import connection
from django.test import Client

from integrations import blind_index
from integrations.models import Submission, SubmissionStatus
from tests.conftest import komo_entry

pytestmark = pytest.mark.django_db


def post_header(client: Client, slug: str, token: str | None, body, slash: str = "", **extra):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return client.post(
        f"/api/v1/hubs/{slug}/submissions{slash}",
        data=data,
        content_type=extra.pop("content_type", "application/json"),
        **headers,
        **extra,
    )


def test_new_submission_is_accepted_with_202_and_stored_pending(make_hub, client):
    # given
    hub, token = make_hub()
    payload = komo_entry()
    # when
    response = post_header(client, hub.slug, token, payload)
    # then
    assert response.status_code == 202
    stored = Submission.objects.get(hub=hub, komo_id=payload["id"])
    assert response.json() == {"submission": str(stored.public_id), "status": "pending"}
    assert stored.payload == payload
    assert stored.status == SubmissionStatus.PENDING
    assert stored.email_hash == blind_index.blind_hash("email", "priya.natarajan@example.com")
    assert stored.next_attempt_at is not None


def test_trailing_slash_and_path_token_are_accepted(make_hub, client):
    hub, token = make_hub()
    assert post_header(client, hub.slug, token, komo_entry(), slash="/").status_code == 202
    response = client.post(
        f"/api/v1/ingest/{token}/", data=json.dumps(komo_entry()), content_type="application/json"
    )
    assert response.status_code == 202
    response = client.post(
        f"/api/v1/ingest/{token}", data=json.dumps(komo_entry()), content_type="application/json"
    )
    assert response.status_code == 202
    assert Submission.objects.filter(hub=hub).count() == 3


def test_same_komo_id_again_answers_200_with_the_existing_submission(make_hub, client):
    hub, token = make_hub()
    payload = komo_entry()
    first = post_header(client, hub.slug, token, payload)
    second = post_header(client, hub.slug, token, payload)
    assert (first.status_code, second.status_code) == (202, 200)
    assert second.json() == first.json()
    assert Submission.objects.filter(hub=hub).count() == 1


def test_same_komo_id_on_two_hubs_is_two_submissions(make_hub, client):
    hub_a, token_a = make_hub()
    hub_b, token_b = make_hub(slug="other-hub", name="Other")
    payload = komo_entry()
    assert post_header(client, hub_a.slug, token_a, payload).status_code == 202
    assert post_header(client, hub_b.slug, token_b, payload).status_code == 202


def test_event_the_hub_does_not_deliver_is_stored_as_ignored(make_hub, client):
    hub, token = make_hub()
    response = post_header(client, hub.slug, token, komo_entry(event="CardViewed"))
    assert response.status_code == 202
    assert response.json()["status"] == "ignored"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"{not json", "not valid JSON"),
        (b"", "empty"),
        (b"[1, 2]", "JSON object"),
        (b"\xff\xfe{}", "UTF-8"),
        (b'{"id": NaN}', "not valid JSON"),
        (
            json.dumps({"event": "CompetitionEntrySuccess", "timestamp": "2026-01-01T00:00:00Z"}),
            "id",
        ),
        (json.dumps({"id": "x", "timestamp": "2026-01-01T00:00:00Z"}), "event"),
        (json.dumps({"id": "x", "event": "CompetitionEntrySuccess"}), "timestamp"),
        (json.dumps({"id": "x", "event": "E", "timestamp": "yesterday"}), "ISO 8601"),
        (
            json.dumps({"id": {"a": 1}, "event": "E", "timestamp": "2026-01-01T00:00:00Z"}),
            "'id' must be a string",
        ),
    ],
)
def test_bad_bodies_get_400_naming_the_problem_and_store_nothing(make_hub, client, body, expected):
    hub, token = make_hub()
    response = post_header(client, hub.slug, token, body)
    assert response.status_code == 400
    assert expected in response.json()["detail"]
    assert not Submission.objects.exists()


def test_wrong_content_type_gets_415(make_hub, client):
    hub, token = make_hub()
    response = post_header(
        client, hub.slug, token, "a=b", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 415
    assert not Submission.objects.exists()


@pytest.mark.parametrize("token", [None, "wrong-token", "kbp_" + "x" * 43])
def test_missing_or_bad_token_gets_401(make_hub, client, token):
    hub, _ = make_hub()
    response = post_header(client, hub.slug, token, komo_entry())
    assert response.status_code == 401
    assert not Submission.objects.exists()


def test_token_of_another_hub_gets_401(make_hub, client):
    hub_a, _ = make_hub()
    _, token_b = make_hub(slug="other-hub", name="Other")
    assert post_header(client, hub_a.slug, token_b, komo_entry()).status_code == 401


def test_bad_path_token_gets_401(make_hub, client):
    make_hub()
    response = client.post(
        "/api/v1/ingest/nope", data=json.dumps(komo_entry()), content_type="application/json"
    )
    assert response.status_code == 401


def test_unknown_hub_gets_404(make_hub, client):
    _, token = make_hub()
    assert post_header(client, "no-such-hub", token, komo_entry()).status_code == 404


def test_body_over_the_limit_gets_413(make_hub, client, settings):
    settings.WEBHOOK_MAX_BODY_BYTES = 2_000
    hub, token = make_hub()
    response = post_header(client, hub.slug, token, komo_entry(comment="x" * 3_000))
    assert response.status_code == 413
    assert "2000 bytes" in response.json()["detail"]
    assert not Submission.objects.exists()


def test_reissued_token_replaces_the_old_one(make_hub, client):
    from integrations.services.hubs import hub_token_issue

    hub, old = make_hub()
    new = hub_token_issue(hub=hub)
    assert post_header(client, hub.slug, old, komo_entry()).status_code == 401
    assert post_header(client, hub.slug, new, komo_entry()).status_code == 202


def test_token_is_stored_hashed(make_hub):
    hub, token = make_hub()
    assert token not in hub.ingest_token_hash
    assert hub.ingest_token_hint == token[-4:]


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicates_create_exactly_one_submission(make_hub):
    # given
    hub, token = make_hub()
    payload = komo_entry()
    statuses: list[int] = []
    barrier = threading.Barrier(8)

    def send() -> None:
        barrier.wait()
        try:
            statuses.append(post_header(Client(), hub.slug, token, payload).status_code)
        finally:
            connection.close()

    # when
    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then
    assert sorted(statuses) == [200] * 7 + [202]
    assert Submission.objects.filter(hub=hub, komo_id=payload["id"]).count() == 1

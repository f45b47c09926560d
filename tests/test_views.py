"""Portal pages: hub list, dashboard, preview, submission detail (Django test client)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from integrations.braze.client import Outcome, TrackResult
from integrations.models import (
    BrazeConnection,
    ConnectionStatus,
    DeliveryAttempt,
    FieldMapping,
    Hub,
    HubMembership,
    HubRole,
    Submission,
    SubmissionStatus,
)
from integrations.services.intake import person_hash_columns

pytestmark = pytest.mark.django_db

STORED_KEY = "stored-braze-key-0000-aaaa-zz91"
TOKEN = "kbp_this-is-a-full-ingest-token-never-shown-9f3c"


# --- local helpers ----------------------------------------------------------------------------


def hub_create(*, slug: str = "summer-comp", events: tuple[str, ...] = ("CompetitionEntrySuccess",)
               ) -> Hub:
    hub = Hub.objects.create(
        slug=slug, name=slug.replace("-", " ").title(), active=True, identity_type="alias_email",
        identity_field="email", alias_label="email", default_phone_region="AU",
        events=list(events), ingest_token_hint=TOKEN[-4:],
    )
    connection = BrazeConnection(hub=hub, rest_endpoint="https://rest.iad-01.braze.com")
    connection.set_api_key(STORED_KEY)
    connection.save()
    mappings = (("email", "email", "email", "hold"), ("first_name", "first_name", "string", "skip"),
                ("mobile", "phone", "phone", "skip"))
    for position, (field, attribute, value_type, on_error) in enumerate(mappings):
        FieldMapping.objects.create(hub=hub, position=position, komo_field=field,
                                    attribute=attribute, value_type=value_type, on_error=on_error)
    return hub


def entry(**changes: Any) -> dict[str, Any]:
    return {"id": "c0ffee00-0000-4000-8000-000000000001", "event": "CompetitionEntrySuccess",
            "timestamp": "2026-03-14T09:26:53.589Z", "email": "Priya@Example.com",
            "first_name": "Priya", "mobile": "0412 555 019", **changes}


def submission_create(hub: Hub, *, status: str = SubmissionStatus.PENDING, **changes: Any
                      ) -> Submission:
    payload = entry(**changes)
    return Submission.objects.create(hub=hub, komo_id=payload["id"], event=payload["event"],
                                     payload=payload, status=status,
                                     **person_hash_columns(hub, payload))


def member(client, hub: Hub | None, *, role: str = HubRole.EDITOR, username: str = "marketer"):
    user = get_user_model().objects.create_user(username=username, password="pw-Secret-123",
                                                is_staff=True)
    if hub is not None:
        HubMembership.objects.create(user=user, hub=hub, role=role)
    client.force_login(user)
    return user


@pytest.fixture
def fake_braze(monkeypatch):
    calls: list[dict[str, Any]] = []

    class Fake:
        result = TrackResult(status_code=201, outcome=Outcome.SUCCESS, message="success")

        def track(self, *, endpoint: str, api_key: str, body: dict[str, Any]) -> TrackResult:
            calls.append({"endpoint": endpoint, "body": body})
            return self.result

    fake = Fake()
    monkeypatch.setattr("integrations.services.braze_api.braze_client", lambda: fake)
    fake.calls = calls
    return fake


def preview_url(hub: Hub) -> str:
    return reverse("integrations:hub_preview", args=[hub.slug])


# --- access -----------------------------------------------------------------------------------


def test_pages_need_a_login(client):
    # given
    hub = hub_create()
    # when
    response = client.get(reverse("integrations:hub_dashboard", args=[hub.slug]))
    # then
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_hub_list_shows_only_my_hubs_with_their_health(client):
    # given
    mine = hub_create(slug="mine")
    hub_create(slug="theirs")
    submission_create(mine, status=SubmissionStatus.FAILED)
    member(client, mine, role=HubRole.VIEWER)
    # when
    response = client.get(reverse("integrations:hub_list"))
    # then
    html = response.content.decode()
    assert [row.hub.slug for row in response.context["rows"]] == ["mine"]
    assert response.context["rows"][0].health.failed == 1
    assert 'class="badge badge--error"' in html
    assert "/hubs/theirs/" not in html


def test_hub_list_marks_a_quiet_hub_ok(client):
    # given a hub whose connection has worked
    hub = hub_create()
    BrazeConnection.objects.filter(hub=hub).update(status="ok", last_success_at=timezone.now())
    submission_create(hub, status=SubmissionStatus.DELIVERED)
    member(client, hub)
    # when
    html = client.get(reverse("integrations:hub_list")).content.decode()
    # then
    assert 'class="badge badge--ok"' in html


def test_other_hubs_are_not_found(client):
    # given
    hub_create(slug="mine")
    theirs = hub_create(slug="theirs")
    hidden = submission_create(theirs)
    member(client, Hub.objects.get(slug="mine"))
    # when
    pages = [
        client.get(reverse("integrations:hub_dashboard", args=["theirs"])),
        client.get(preview_url(theirs)),
        client.get(reverse("integrations:submission_detail", args=[hidden.public_id])),
        client.post(reverse("integrations:submission_redeliver", args=[hidden.public_id])),
    ]
    # then
    assert [page.status_code for page in pages] == [404, 404, 404, 404]


# --- dashboard --------------------------------------------------------------------------------


def test_dashboard_shows_webhook_urls_with_the_token_hint_only(client):
    # given
    hub = hub_create()
    member(client, hub)
    # when
    html = client.get(reverse("integrations:hub_dashboard", args=[hub.slug])).content.decode()
    # then
    assert "http://testserver/api/v1/hubs/summer-comp/submissions" in html
    assert f"http://testserver/api/v1/ingest/…{TOKEN[-4:]}" in html
    assert TOKEN[:-4] not in html
    assert STORED_KEY not in html
    assert f"…{STORED_KEY[-4:]}" in html


def test_dashboard_explains_a_paused_connection(client):
    # given
    hub = hub_create()
    BrazeConnection.objects.filter(hub=hub).update(
        status=ConnectionStatus.PAUSED, status_reason="Braze refused the API key (401)."
    )
    member(client, hub)
    # when
    html = client.get(reverse("integrations:hub_dashboard", args=[hub.slug])).content.decode()
    # then
    assert "Paused: Braze refused the API key" in html
    assert "Braze refused the API key (401)." in html


def test_editor_tests_the_connection_and_reads_the_answer(client, fake_braze):
    # given
    hub = hub_create()
    member(client, hub)
    url = reverse("integrations:hub_connection_test", args=[hub.slug])
    # when
    not_post = client.get(url)
    response = client.post(url, follow=True)
    # then
    assert not_post.status_code == 405
    assert len(fake_braze.calls) == 1
    assert "Braze accepted the data." in response.content.decode()
    assert BrazeConnection.objects.get(hub=hub).status == ConnectionStatus.OK


def test_viewer_cannot_test_the_connection(client, fake_braze):
    # given
    hub = hub_create()
    member(client, hub, role=HubRole.VIEWER)
    # when
    response = client.post(reverse("integrations:hub_connection_test", args=[hub.slug]))
    # then
    assert response.status_code == 403
    assert fake_braze.calls == []


# --- preview ----------------------------------------------------------------------------------


def test_preview_shows_the_exact_body_and_the_problems_and_sends_nothing(client, fake_braze):
    # given
    hub = hub_create()
    member(client, hub)
    payload = entry(mobile="not a phone")
    # when
    response = client.post(preview_url(hub), {"payload": json.dumps(payload)})
    # then
    preview = response.context["preview"]
    assert json.loads(preview.body_json) == {"attributes": [{
        "user_alias": {"alias_name": "priya@example.com", "alias_label": "email"},
        "_update_existing_only": False, "email": "priya@example.com", "first_name": "Priya",
    }], "events": [{  # CompetitionEntrySuccess lands as attributes + komo_competition_entry
        "user_alias": {"alias_name": "priya@example.com", "alias_label": "email"},
        "_update_existing_only": False, "name": "komo_competition_entry",
        "time": "2026-03-14T09:26:53.589Z",
    }]}
    assert [problem["field"] for problem in preview.problems] == ["mobile"]
    assert preview.delivered_event is True
    html = response.content.decode()
    assert "&quot;alias_name&quot;: &quot;priya@example.com&quot;" in html
    assert "field skipped" in html
    assert fake_braze.calls == []
    assert not DeliveryAttempt.objects.exists()
    assert not Submission.objects.exists()


def test_preview_says_when_the_submission_would_be_held(client):
    # given
    hub = hub_create()
    member(client, hub)
    # when
    response = client.post(preview_url(hub), {"payload": json.dumps(entry(email=""))})
    # then
    assert response.context["preview"].body_json == ""
    assert "Held back:" in response.content.decode()
    assert "Nothing would be sent for this submission." in response.content.decode()


def test_preview_says_when_the_event_is_not_delivered(client):
    # given
    hub = hub_create()
    member(client, hub)
    # when
    response = client.post(preview_url(hub), {"payload": json.dumps(entry(event="CardViewed"))})
    # then
    assert response.context["preview"].delivered_event is False
    assert "would be stored as ignored" in response.content.decode()


@pytest.mark.parametrize(("text", "message"), [
    ("{not json", "This is not valid JSON"),
    ('["a", "list"]', "The payload must be a JSON object"),
])
def test_preview_refuses_what_is_not_a_json_object(client, text, message):
    # given
    hub = hub_create()
    member(client, hub)
    # when
    response = client.post(preview_url(hub), {"payload": text})
    # then
    assert response.context["preview"] is None
    assert message in response.content.decode()


def test_preview_starts_from_a_recent_submission_or_the_sample(client):
    # given
    hub = hub_create()
    submission = submission_create(hub, first_name="Sam", email="sam@example.com")
    member(client, hub)
    # when
    picked = client.get(preview_url(hub), {"submission": str(submission.public_id)})
    sample = client.get(preview_url(hub), {"sample": "1"})
    # then
    assert '"alias_name": "sam@example.com"' in picked.context["preview"].body_json
    assert sample.context["preview"].body_json
    assert sample.context["source"] == "sample"


# --- submissions ------------------------------------------------------------------------------


def test_submission_detail_escapes_payload_values(client):
    # given
    hub = hub_create()
    submission = submission_create(hub, first_name="<script>alert(1)</script>")
    member(client, hub, role=HubRole.VIEWER)
    # when
    html = client.get(
        reverse("integrations:submission_detail", args=[submission.public_id])
    ).content.decode()
    # then
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_dashboard_escapes_values_from_payloads(client):
    # given
    hub = hub_create()
    submission_create(hub, email="<b>x</b>@example.com")
    member(client, hub)
    # when
    html = client.get(reverse("integrations:hub_dashboard", args=[hub.slug])).content.decode()
    # then
    assert "<b>x</b>" not in html
    assert "&lt;b&gt;x&lt;/b&gt;@example.com" in html


def test_support_redelivers_a_failed_submission(client):
    # given
    hub = hub_create()
    submission = submission_create(hub, status=SubmissionStatus.FAILED)
    Submission.objects.filter(pk=submission.pk).update(attempts=8, status_reason="gave up")
    member(client, hub, role=HubRole.VIEWER)
    # when
    response = client.post(
        reverse("integrations:submission_redeliver", args=[submission.public_id]), follow=True
    )
    # then
    submission.refresh_from_db()
    # the attempts made so far stay counted; the retry policy counts afresh from here
    assert (submission.status, submission.attempts) == (SubmissionStatus.PENDING, 8)
    assert submission.retries_from == 8
    assert submission.next_attempt_at <= timezone.now()
    assert "queued for delivery again" in response.content.decode()


# --- page basics ------------------------------------------------------------------------------


def test_pages_have_no_inline_scripts_and_offer_three_languages(client):
    # given
    hub = hub_create()
    submission = submission_create(hub)
    member(client, hub)
    urls = [reverse("integrations:hub_list"),
            reverse("integrations:hub_dashboard", args=[hub.slug]), preview_url(hub),
            reverse("integrations:submission_detail", args=[submission.public_id])]
    # when
    pages = [client.get(url).content.decode() for url in urls]
    # then
    for html in pages:
        assert "<script" not in html
        assert ">English<" in html and ">Deutsch<" in html and ">日本語<" in html


def test_language_switch_sets_the_page_language(client):
    # given
    hub = hub_create()
    member(client, hub)
    # when
    client.post(reverse("set_language"), {"language": "de", "next": "/"})
    html = client.get(reverse("integrations:hub_list")).content.decode()
    # then
    assert '<html lang="de">' in html

"""The admin as the marketer's configuration tool and the support tool (Django test client)."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from integrations import tokens
from integrations.braze.client import Outcome, TrackResult
from integrations.models import (
    AttemptItem,
    BrazeConnection,
    ConfigChange,
    ConnectionStatus,
    DeliveryAttempt,
    FieldMapping,
    Hub,
    HubMembership,
    HubRole,
    ItemResult,
    Submission,
    SubmissionStatus,
)
from integrations.services.intake import person_hash_columns

pytestmark = pytest.mark.django_db

STORED_KEY = "stored-braze-key-0000-aaaa-zz91"
NEW_KEY = "fresh-braze-key-1111-bbbb-qq42"
IAD_01 = "https://rest.iad-01.braze.com"
DEFAULT_MAPPINGS = (
    ("email", "email", "email"),
    ("first_name", "first_name", "string"),
    ("mobile", "phone", "phone"),
)


# --- local helpers ----------------------------------------------------------------------------


def hub_create(*, slug: str = "summer-comp", key: str = STORED_KEY, endpoint: str = IAD_01,
               mappings: tuple[tuple[str, str, str], ...] = DEFAULT_MAPPINGS) -> Hub:
    hub = Hub.objects.create(
        slug=slug, name=slug.replace("-", " ").title(), active=True, identity_type="alias_email",
        identity_field="email", alias_label="email", default_phone_region="AU",
        events=["CompetitionEntrySuccess"],
    )
    connection = BrazeConnection(hub=hub, rest_endpoint=endpoint)
    connection.set_api_key(key)
    connection.save()
    for position, (field, attribute, value_type) in enumerate(mappings):
        FieldMapping.objects.create(hub=hub, position=position, komo_field=field,
                                    attribute=attribute, value_type=value_type)
    return hub


def submission_create(hub: Hub, *, status: str = SubmissionStatus.PENDING, **payload: Any
                      ) -> Submission:
    komo_id = payload.pop("id", f"komo-{Submission.objects.count() + 1}")
    body = {"id": komo_id, "event": "CompetitionEntrySuccess",
            "timestamp": "2026-03-14T09:26:53.589Z", "email": "priya@example.com",
            "first_name": "Priya", **payload}
    return Submission.objects.create(
        hub=hub, komo_id=komo_id, event=body["event"], payload=body, status=status,
        **person_hash_columns(hub, body), attempts=3 if status == "failed" else 0,
    )


def user_create(username: str, *, superuser: bool = False, hub: Hub | None = None,
                role: str = HubRole.VIEWER) -> Any:
    user = get_user_model().objects.create_user(
        username=username, password="pw-Secret-123", is_staff=True, is_superuser=superuser
    )
    if hub is not None:
        HubMembership.objects.create(user=user, hub=hub, role=role)
    return user


def hub_form_data(hub: Hub, *, key: str = "", instance: str | None = None, custom: str = "",
                  mappings: list[dict[str, str]] | None = None, **fields: Any) -> dict[str, str]:
    """The POST body of the hub change form, as the browser sends it."""
    hub.refresh_from_db()
    values = {
        "name": hub.name, "slug": hub.slug, "komo_site_id": hub.komo_site_id,
        "active": hub.active, "identity_type": hub.identity_type,
        "identity_field": hub.identity_field, "alias_label": hub.alias_label,
        "events": "\n".join(hub.events), "create_missing_users": hub.create_missing_users,
        "default_phone_region": hub.default_phone_region,
        "retention_days": hub.retention_days, **fields,
    }
    data = {name: ("on" if value is True else value) for name, value in values.items()
            if value is not False}
    data.update(_connection_data(hub, key=key, instance=instance, custom=custom))
    data.update(_mapping_data(hub, mappings))
    data["_save"] = "Save"
    return data


def _connection_data(hub: Hub, *, key: str, instance: str | None, custom: str) -> dict[str, str]:
    connection = BrazeConnection.objects.get(hub=hub)
    return {
        "connection-TOTAL_FORMS": "1", "connection-INITIAL_FORMS": "1",
        "connection-MIN_NUM_FORMS": "0", "connection-MAX_NUM_FORMS": "1",
        "connection-0-id": str(connection.pk), "connection-0-hub": str(hub.pk),
        "connection-0-braze_instance": instance if instance is not None else
        (connection.rest_endpoint if not custom else "other"),
        "connection-0-custom_endpoint": custom,
        "connection-0-new_api_key": key,
    }


def _mapping_data(hub: Hub, rows: list[dict[str, str]] | None) -> dict[str, str]:
    if rows is None:
        rows = [{"id": str(m.pk), "komo_field": m.komo_field, "attribute": m.attribute,
                 "value_type": m.value_type} for m in hub.mappings.all()]
    initial = [row for row in rows if row.get("id")]
    data = {
        "mappings-TOTAL_FORMS": str(len(rows)), "mappings-INITIAL_FORMS": str(len(initial)),
        "mappings-MIN_NUM_FORMS": "0", "mappings-MAX_NUM_FORMS": "1000",
    }
    for index, row in enumerate(rows):
        prefix = f"mappings-{index}-"
        data.update({
            f"{prefix}hub": str(hub.pk), f"{prefix}position": str(index),
            f"{prefix}value_type": "string", f"{prefix}on_error": "skip", f"{prefix}on_false": "",
        })
        data.update({f"{prefix}{name}": value for name, value in row.items()})
    return data


def change_url(hub: Hub) -> str:
    return reverse("admin:integrations_hub_change", args=[hub.pk])


class FakeBraze:
    def __init__(self, result: TrackResult) -> None:
        self.result = result
        self.calls: list[dict[str, Any]] = []

    def track(self, *, endpoint: str, api_key: str, body: dict[str, Any]) -> TrackResult:
        self.calls.append({"endpoint": endpoint, "body": body})
        return self.result


@pytest.fixture
def superuser_client(client):
    client.force_login(user_create("root", superuser=True))
    return client


@pytest.fixture
def fake_braze(monkeypatch):
    def install(result: TrackResult) -> FakeBraze:
        fake = FakeBraze(result)
        monkeypatch.setattr("integrations.services.braze_api.braze_client", lambda: fake)
        return fake

    return install


# --- the API key is write-only ----------------------------------------------------------------


def test_change_form_never_shows_the_api_key_only_its_last_four(superuser_client):
    # given
    hub = hub_create()
    # when
    html = superuser_client.get(change_url(hub)).content.decode()
    # then
    assert STORED_KEY not in html
    assert f"…{STORED_KEY[-4:]}" in html
    assert 'type="password"' in html


def test_blank_key_keeps_the_stored_key(superuser_client):
    # given
    hub = hub_create()
    # when
    response = superuser_client.post(change_url(hub), hub_form_data(hub, name="Renamed"))
    # then
    assert response.status_code == 302
    connection = BrazeConnection.objects.get(hub=hub)
    assert connection.api_key == STORED_KEY
    change = ConfigChange.objects.filter(hub=hub).first()
    assert change.action == "changed"
    assert change.changes["name"] == ["Summer Comp", "Renamed"]
    assert "braze.api_key" not in change.changes


def test_new_key_is_stored_and_recorded_as_changed_without_the_key(superuser_client):
    # given
    hub = hub_create()
    # when
    response = superuser_client.post(change_url(hub), hub_form_data(hub, key=NEW_KEY),
                                     follow=True)
    # then
    connection = BrazeConnection.objects.get(hub=hub)
    assert connection.api_key == NEW_KEY
    assert connection.api_key_last4 == NEW_KEY[-4:]
    change = ConfigChange.objects.filter(hub=hub).first()
    assert change.changes == {"braze.api_key": "changed"}
    assert NEW_KEY not in json.dumps(change.changes) + change.summary
    assert NEW_KEY not in response.content.decode()


def test_a_refused_form_does_not_echo_the_typed_key(superuser_client):
    # given
    hub = hub_create()
    data = hub_form_data(hub, key=NEW_KEY, mappings=[
        {"komo_field": "first_name", "attribute": "First_Name"},
    ])
    # when
    response = superuser_client.post(change_url(hub), data)
    # then
    assert response.status_code == 200
    assert NEW_KEY not in response.content.decode()
    assert BrazeConnection.objects.get(hub=hub).api_key == STORED_KEY


def test_view_only_member_sees_no_key_either(client):
    # given
    hub = hub_create()
    client.force_login(user_create("support", hub=hub, role=HubRole.VIEWER))
    # when
    response = client.get(change_url(hub))
    # then
    html = response.content.decode()
    assert response.status_code == 200
    assert STORED_KEY not in html
    assert f"…{STORED_KEY[-4:]}" in html
    assert 'name="_save"' not in html


def test_new_key_on_a_paused_connection_resumes_it(superuser_client):
    # given
    hub = hub_create()
    BrazeConnection.objects.filter(hub=hub).update(status=ConnectionStatus.PAUSED,
                                                   status_reason="Braze refused the API key")
    # when
    superuser_client.post(change_url(hub), hub_form_data(hub, key=NEW_KEY))
    # then
    connection = BrazeConnection.objects.get(hub=hub)
    assert connection.status == ConnectionStatus.UNTESTED
    assert connection.status_reason == ""


# --- validation that explains itself ----------------------------------------------------------


def test_mis_cased_standard_attribute_is_explained_on_its_row(superuser_client):
    # given
    hub = hub_create()
    rows = [{"komo_field": "first_name", "attribute": "First_Name"}]
    # when
    response = superuser_client.post(change_url(hub), hub_form_data(hub, mappings=rows))
    # then
    assert response.status_code == 200
    formset = _formset(response, "mappings")
    assert "did you mean “first_name”" in str(formset.forms[0].errors["attribute"])
    assert not FieldMapping.objects.filter(hub=hub, attribute="First_Name").exists()


def test_two_mappings_to_one_attribute_are_refused(superuser_client):
    # given
    hub = hub_create()
    rows = [{"komo_field": "first_name", "attribute": "first_name"},
            {"komo_field": "given_name", "attribute": "first_name"}]
    # when
    response = superuser_client.post(change_url(hub), hub_form_data(hub, mappings=rows))
    # then
    formset = _formset(response, "mappings")
    assert not formset.forms[0].errors
    assert "already set by mapping 1" in str(formset.forms[1].errors["attribute"])


def test_identity_field_not_captured_is_refused_when_submissions_exist(superuser_client):
    # given
    hub = hub_create()
    submission_create(hub)
    # when
    response = superuser_client.post(change_url(hub), hub_form_data(hub, identity_field="mail"))
    # then
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "“mail” is not a field this hub captures" in str(errors["identity_field"])
    hub.refresh_from_db()
    assert hub.identity_field == "email"


def test_identity_field_is_not_checked_before_anything_arrived(superuser_client):
    # given
    hub = hub_create()
    # when
    response = superuser_client.post(change_url(hub), hub_form_data(hub, identity_field="mail"))
    # then
    assert response.status_code == 302
    hub.refresh_from_db()
    assert hub.identity_field == "mail"


def test_mapping_a_field_not_seen_yet_saves_with_a_warning(superuser_client):
    # given
    hub = hub_create(mappings=())
    submission_create(hub)
    rows = [{"komo_field": "email", "attribute": "email", "value_type": "email"},
            {"komo_field": "fav_team", "attribute": "favourite_team"}]
    # when
    response = superuser_client.post(change_url(hub), hub_form_data(hub, mappings=rows),
                                     follow=True)
    # then
    assert FieldMapping.objects.filter(hub=hub, attribute="favourite_team").exists()
    assert "No recent submission contains the Komo field “fav_team”" in response.content.decode()


def test_phone_mapping_without_region_is_explained(superuser_client):
    # given
    hub = hub_create(mappings=(("email", "email", "email"),))
    rows = [{"komo_field": "mobile", "attribute": "phone", "value_type": "phone"}]
    # when
    response = superuser_client.post(
        change_url(hub), hub_form_data(hub, mappings=rows, default_phone_region="")
    )
    # then
    assert response.status_code == 200
    errors = " ".join(_formset(response, "mappings").non_form_errors())
    assert "Choose a default phone region" in errors


def test_events_are_edited_as_lines_or_commas(superuser_client):
    # given
    hub = hub_create()
    # when
    superuser_client.post(change_url(hub), hub_form_data(
        hub, events="CompetitionEntrySuccess, PrizeAwarded\nSignUpSuccess\nPrizeAwarded"))
    # then
    hub.refresh_from_db()
    assert hub.events == ["CompetitionEntrySuccess", "PrizeAwarded", "SignUpSuccess"]


def test_deleting_and_re_adding_an_attribute_in_one_save_works(superuser_client):
    # given
    hub = hub_create()
    rows = [{"id": str(m.pk), "komo_field": m.komo_field, "attribute": m.attribute,
             "value_type": m.value_type} for m in hub.mappings.all()]
    rows[1]["DELETE"] = "on"
    rows.append({"komo_field": "given_name", "attribute": "first_name"})
    # when
    response = superuser_client.post(change_url(hub), hub_form_data(hub, mappings=rows))
    # then
    assert response.status_code == 302
    assert hub.mappings.get(attribute="first_name").komo_field == "given_name"


# --- the Braze endpoint allow-list ------------------------------------------------------------


def test_endpoint_outside_the_allow_list_is_refused_with_the_reason(superuser_client):
    # given
    hub = hub_create()
    # when
    response = superuser_client.post(
        change_url(hub), hub_form_data(hub, custom="https://braze.attacker.example")
    )
    # then
    assert response.status_code == 200
    errors = _formset(response, "connection").forms[0].errors
    assert "is not a Braze REST endpoint" in str(errors["custom_endpoint"])
    assert BrazeConnection.objects.get(hub=hub).rest_endpoint == IAD_01


def test_choosing_an_instance_sets_its_endpoint(superuser_client):
    # given
    hub = hub_create()
    # when
    superuser_client.post(change_url(hub),
                          hub_form_data(hub, instance="https://rest.fra-02.braze.eu"))
    # then
    assert BrazeConnection.objects.get(hub=hub).rest_endpoint == "https://rest.fra-02.braze.eu"
    change = ConfigChange.objects.filter(hub=hub).first()
    assert change.changes["braze.rest_endpoint"] == [IAD_01, "https://rest.fra-02.braze.eu"]


def test_a_new_hub_needs_an_api_key_and_its_creator_becomes_editor(client):
    # given
    other = hub_create(slug="other")
    editor = user_create("marketer", hub=other, role=HubRole.EDITOR)
    client.force_login(editor)
    data = {
        "name": "Winter", "slug": "winter", "active": "on", "identity_type": "alias_email",
        "identity_field": "email", "alias_label": "email", "events": "CompetitionEntrySuccess",
        "create_missing_users": "on", "default_phone_region": "AU", "retention_days": "90",
        "connection-TOTAL_FORMS": "1", "connection-INITIAL_FORMS": "0",
        "connection-MIN_NUM_FORMS": "0", "connection-MAX_NUM_FORMS": "1",
        "connection-0-braze_instance": IAD_01, "connection-0-new_api_key": "",
        "mappings-TOTAL_FORMS": "0", "mappings-INITIAL_FORMS": "0",
        "mappings-MIN_NUM_FORMS": "0", "mappings-MAX_NUM_FORMS": "1000", "_save": "Save",
    }
    add_url = reverse("admin:integrations_hub_add")
    # when
    refused = client.post(add_url, data)
    accepted = client.post(add_url, {**data, "connection-0-new_api_key": NEW_KEY})
    # then
    assert "A new connection needs an API key." in refused.content.decode()
    assert accepted.status_code == 302
    hub = Hub.objects.get(slug="winter")
    assert hub.connection.api_key == NEW_KEY
    assert HubMembership.objects.get(hub=hub, user=editor).role == HubRole.EDITOR
    assert ConfigChange.objects.get(hub=hub).action == "created"


# --- scoping ----------------------------------------------------------------------------------


def test_members_see_only_their_hubs_and_their_submissions(client):
    # given
    mine, theirs = hub_create(slug="mine"), hub_create(slug="theirs")
    submission_create(mine, email="mine@example.com")
    hidden = submission_create(theirs, email="theirs@example.com")
    client.force_login(user_create("support", hub=mine, role=HubRole.VIEWER))
    # when
    hubs = client.get(reverse("admin:integrations_hub_changelist")).content.decode()
    submissions = client.get(
        reverse("admin:integrations_submission_changelist")
    ).content.decode()
    other_hub = client.get(change_url(theirs))
    other_submission = client.get(
        reverse("admin:integrations_submission_change", args=[hidden.pk])
    )
    # then
    assert "/hubs/mine/" in hubs and "/hubs/theirs/" not in hubs
    assert "mine@example.com" in submissions and "theirs@example.com" not in submissions
    assert other_hub.status_code == 302  # the admin's "does not exist" redirect
    assert other_submission.status_code == 302


def test_viewers_cannot_change_a_hub_editors_can(client):
    # given
    hub = hub_create()
    viewer = user_create("support", hub=hub, role=HubRole.VIEWER)
    editor = user_create("marketer", hub=hub, role=HubRole.EDITOR)
    # when
    client.force_login(viewer)
    refused = client.post(change_url(hub), hub_form_data(hub, name="By viewer"))
    client.force_login(editor)
    accepted = client.post(change_url(hub), hub_form_data(hub, name="By editor"))
    # then
    assert refused.status_code == 403
    assert accepted.status_code == 302
    hub.refresh_from_db()
    assert hub.name == "By editor"


def test_staff_without_membership_see_no_hub_admin(client):
    # given
    hub_create()
    client.force_login(user_create("stranger"))
    # when
    response = client.get(reverse("admin:integrations_hub_changelist"))
    # then
    assert response.status_code == 403


# --- hub actions ------------------------------------------------------------------------------


def _action(client, model: str, action: str, pks: list[int], **extra: Any):
    return client.post(reverse(f"admin:integrations_{model}_changelist"), {
        "action": action, "_selected_action": [str(pk) for pk in pks], "index": "0", **extra,
    }, follow=extra.pop("follow", False))


def test_issue_token_shows_it_once_and_stores_only_its_hash(superuser_client):
    # given
    hub = hub_create()
    # when
    response = _action(superuser_client, "hub", "issue_token", [hub.pk])
    # then
    html = response.content.decode()
    token = re.search(r'value="(kbp_[^"]+)"', html).group(1)
    hub.refresh_from_db()
    assert hub.ingest_token_hash == tokens.token_hash(token)
    assert "no-store" in response["Cache-Control"]
    assert token not in superuser_client.get(change_url(hub)).content.decode()
    assert f"…{token[-4:]}" in superuser_client.get(change_url(hub)).content.decode()
    assert token not in json.dumps(list(ConfigChange.objects.values("summary", "changes")))


def test_export_json_downloads_the_config_with_the_key_masked(superuser_client):
    # given
    hub = hub_create()
    # when
    response = _action(superuser_client, "hub", "export_json", [hub.pk])
    # then
    assert response["Content-Disposition"] == 'attachment; filename="summer-comp.json"'
    config = json.loads(response.content)
    assert config["braze"] == {"rest_endpoint": IAD_01, "api_key": "********"}
    assert [m["attribute"] for m in config["mappings"]] == ["email", "first_name", "phone"]


def test_switch_off_and_on_are_recorded(superuser_client):
    # given
    hub = hub_create()
    # when
    _action(superuser_client, "hub", "switch_off", [hub.pk])
    # then
    hub.refresh_from_db()
    assert hub.active is False
    change = ConfigChange.objects.filter(hub=hub).first()
    assert (change.action, change.changes) == ("switched-off", {"active": [True, False]})


def test_test_connection_action_explains_the_answer(superuser_client, fake_braze):
    # given
    hub = hub_create()
    fake = fake_braze(TrackResult(status_code=401, outcome=Outcome.UNAUTHORIZED,
                                  message="Invalid API key: xyz"))
    # when
    response = _action(superuser_client, "hub", "test_connection", [hub.pk], follow=True)
    # then
    html = response.content.decode()
    assert len(fake.calls) == 1
    assert "Braze refused the API key (401)" in html
    assert BrazeConnection.objects.get(hub=hub).status == ConnectionStatus.PAUSED


def test_hub_list_shows_health_and_counts(superuser_client):
    # given
    hub = hub_create()
    submission_create(hub, status=SubmissionStatus.FAILED)
    submission_create(hub)
    # when
    html = superuser_client.get(reverse("admin:integrations_hub_changelist")).content.decode()
    # then
    assert 'class="kb-badge kb-badge--error"' in html
    assert f'href="/hubs/{hub.slug}/"' in html


# --- support: submissions ---------------------------------------------------------------------


def test_redeliver_action_requeues_failed_submissions(superuser_client):
    # given
    hub = hub_create()
    failed = submission_create(hub, status=SubmissionStatus.FAILED)
    # when
    _action(superuser_client, "submission", "redeliver", [failed.pk])
    # then
    failed.refresh_from_db()
    assert failed.status == SubmissionStatus.PENDING
    assert failed.attempts == 0
    assert failed.next_attempt_at is not None
    assert ConfigChange.objects.filter(hub=hub, action="redelivered").exists()


def test_support_viewer_redelivers_from_the_change_page(client):
    # given
    hub = hub_create()
    held = submission_create(hub, status=SubmissionStatus.HELD)
    client.force_login(user_create("support", hub=hub, role=HubRole.VIEWER))
    url = reverse("admin:integrations_submission_redeliver", args=[held.pk])
    # when
    not_post = client.get(url)
    response = client.post(url)
    # then
    assert not_post.status_code == 405
    assert response.status_code == 302
    held.refresh_from_db()
    assert held.status == SubmissionStatus.PENDING


def test_search_finds_a_submission_by_email_case_insensitively(superuser_client):
    # given
    hub = hub_create()
    submission_create(hub, email="priya@example.com", id="komo-a")
    submission_create(hub, email="other@example.com", id="komo-b")
    # when
    response = superuser_client.get(reverse("admin:integrations_submission_changelist"),
                                    {"q": "Priya@Example.com"})
    # then
    assert [s.komo_id for s in response.context["cl"].result_list] == ["komo-a"]


def test_submission_page_escapes_payload_values(superuser_client):
    # given
    hub = hub_create()
    submission = submission_create(hub, first_name="<script>alert(1)</script>")
    # when
    html = superuser_client.get(
        reverse("admin:integrations_submission_change", args=[submission.pk])
    ).content.decode()
    # then
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_submission_page_shows_attempts_in_plain_words_with_its_own_objects(superuser_client):
    # given
    hub = hub_create()
    mine = submission_create(hub, email="priya@example.com", id="komo-a")
    other = submission_create(hub, email="sam@example.com", id="komo-b")
    attempt = DeliveryAttempt.objects.create(
        hub=hub, started_at=timezone.now() - timedelta(minutes=1), endpoint=IAD_01,
        request_body={"attributes": [
            {"user_alias": {"alias_name": "sam@example.com", "alias_label": "email"}},
            {"user_alias": {"alias_name": "priya@example.com", "alias_label": "email"},
             "first_name": "Priya"},
        ]},
        status_code=429, outcome="rate_limited", message="Too many requests",
        response_body='{"message": "Too many requests"}',
    )
    AttemptItem.objects.create(attempt=attempt, submission=mine, result=ItemResult.RETRY)
    AttemptItem.objects.create(attempt=attempt, submission=other, result=ItemResult.RETRY)
    # when
    html = superuser_client.get(
        reverse("admin:integrations_submission_change", args=[mine.pk])
    ).content.decode()
    # then
    assert "rate limit for this API key was reached" in html
    assert "HTTP 429" in html
    assert "&quot;first_name&quot;: &quot;Priya&quot;" in html
    assert "sam@example.com" not in html


def test_support_sees_config_changes_read_only(superuser_client):
    # given
    hub = hub_create()
    superuser_client.post(change_url(hub), hub_form_data(hub, key=NEW_KEY))
    change = ConfigChange.objects.get(hub=hub)
    # when
    html = superuser_client.get(
        reverse("admin:integrations_configchange_change", args=[change.pk])
    ).content.decode()
    # then
    assert "braze.api_key" in html and "changed" in html
    assert NEW_KEY not in html
    assert 'name="_save"' not in html


def _formset(response, prefix: str):
    for formset in response.context["inline_admin_formsets"]:
        if formset.formset.prefix == prefix:
            return formset.formset
    raise AssertionError(f"no inline formset {prefix}")


def test_delivery_attempts_are_read_only_and_scoped(client):
    # given
    mine, theirs = hub_create(slug="mine"), hub_create(slug="theirs")
    attempts = {
        hub.slug: DeliveryAttempt.objects.create(
            hub=hub, endpoint=IAD_01, request_body={"attributes": [{"external_id": hub.slug}]},
            status_code=201, outcome="success", response_body='{"message": "success"}',
        )
        for hub in (mine, theirs)
    }
    client.force_login(user_create("support", hub=mine))
    # when
    listing = client.get(reverse("admin:integrations_deliveryattempt_changelist"))
    own = client.get(reverse("admin:integrations_deliveryattempt_change",
                             args=[attempts["mine"].pk]))
    other = client.get(reverse("admin:integrations_deliveryattempt_change",
                               args=[attempts["theirs"].pk]))
    # then
    assert list(listing.context["cl"].result_list) == [attempts["mine"]]
    html = own.content.decode()
    assert "Braze accepted the data." in html
    assert "&quot;external_id&quot;: &quot;mine&quot;" in html
    assert 'name="_save"' not in html
    assert other.status_code == 302


def test_memberships_are_managed_by_superusers(client, superuser_client):
    # given
    hub = hub_create()
    user_create("support", hub=hub, role=HubRole.EDITOR)
    url = reverse("admin:integrations_hubmembership_changelist")
    # when
    as_superuser = superuser_client.get(url)
    client.force_login(get_user_model().objects.get(username="support"))
    as_editor = client.get(url)
    # then
    assert as_superuser.status_code == 200
    assert as_editor.status_code == 403

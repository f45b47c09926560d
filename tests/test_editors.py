"""The portal's hub editors: each page, submitted as rendered, gives back the same hub JSON
(form → export → import → same form), misspellings are caught, secrets stay out of pages."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from integrations.models import Hub, HubMembership, HubRole
from integrations.services.hubs import hub_config_export, hub_config_import
from integrations.spec import hub_spec_from_config
from integrations.validation import event_kind_near, standard_attribute_near, validate_hub_spec

RICH = {
    "slug": "rich", "name": "Rich hub", "active": False, "komo_site_id": "site-1",
    "braze": {"rest_endpoint": "https://rest.iad-01.braze.com", "api_key": "key-0000-1111-2222"},
    "identity": {"type": "alias_email", "field": "email", "alias_label": "email"},
    "create_missing_users": True, "default_phone_region": "AU",
    "events": ["CompetitionEntrySuccess", "PrizeAwarded", "QuizStarted", "CouponRedeemed"],
    "new_event_kinds": ["CouponRedeemed"],
    "mappings": [
        {"field": "email", "attribute": "email", "type": "email", "on_error": "hold"},
        {"field": "first_name", "attribute": "first_name"},
        {"field": "optin", "attribute": "email_subscribe", "type": "subscription",
         "on_false": "unsubscribed",
         "subscription_group_id": "6f0c2f7e-1a2b-4c3d-9e4f-5a6b7c8d9e01"},
    ],
    "event_rules": {
        "CompetitionEntrySuccess": {
            "event_name": "entry",
            "properties": ["card_name", {"field": "score", "property": "points", "type": "number"}],
            "attributes": [
                {"attribute": "komo_total_score", "mode": "inc", "field": "score"},
                {"attribute": "komo_cards", "mode": "object",
                 "fields": ["card_name", {"field": "score", "property": "pts", "type": "string"}]},
            ],
            "card_types": {
                "Survey": {"landing": "attributes",
                           "attributes": [{"attribute": "survey_answers", "mode": "add",
                                           "field": "answer"}]},
                "Poll": {"landing": "none"},
            },
        },
        "QuizStarted": {"landing": "event", "attributes": []},
        "CouponRedeemed": {"landing": "event"},
    },
    "engagement_attributes": {"hubs_engaged": "komo_hubs", "entries": "komo_entries"},
    "transactional": {
        "PrizeAwarded": {"campaign_id": "camp-1", "trigger_properties": ["prize_name"]},
        "CompetitionEntrySuccess": {"campaign_id": "camp-2"},
    },
}
SECTIONS = ["general", "connection", "identity", "mappings", "events", "engagement"]


class FormData(HTMLParser):
    """What a browser would submit from the page's first editor form, unchanged."""

    def __init__(self) -> None:
        super().__init__()
        self.data: list[tuple[str, str]] = []
        self.depth = 0
        self.done = False
        self.select: str | None = None
        self.options: list[tuple[str, bool]] = []
        self.textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form" and not self.done and "editor" in (a.get("class") or ""):
            self.depth = 1
            return
        if not self.depth:
            return
        name = a.get("name")
        if tag == "input" and name and a.get("type") not in ("submit", "button"):
            if a.get("type") == "checkbox":
                if "checked" in a:
                    self.data.append((name, a.get("value") or "on"))
            else:
                self.data.append((name, a.get("value") or ""))
        elif tag == "select" and name:
            self.select, self.options = name, []
        elif tag == "option" and self.select:
            self.options.append((a.get("value") or "", "selected" in a))
        elif tag == "textarea" and name:
            self.textarea = name
            self.data.append((name, ""))

    def handle_data(self, data: str) -> None:
        if self.textarea:
            self.data[-1] = (self.textarea, self.data[-1][1] + data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "select" and self.select:
            chosen = [v for v, s in self.options if s] or [self.options[0][0]]
            self.data.append((self.select, chosen[0]))
            self.select = None
        elif tag == "textarea":
            self.textarea = None
        elif tag == "form" and self.depth:
            self.depth, self.done = 0, True


def form_data(html: str) -> dict[str, Any]:
    parser = FormData()
    parser.feed(html)
    merged: dict[str, Any] = {}
    for name, value in parser.data:
        if name == "csrfmiddlewaretoken":
            continue
        merged.setdefault(name, []).append(value)
    return merged


def editor_urls(hub: Hub) -> list[str]:
    urls = [reverse(f"integrations:hub_edit_{s}", args=[hub.slug]) for s in SECTIONS]
    for kind in hub.events:
        urls.append(reverse("integrations:hub_edit_event", args=[hub.slug, kind]))
    for card in ("Survey", "Poll"):
        urls.append(reverse("integrations:hub_edit_card",
                            args=[hub.slug, "CompetitionEntrySuccess", card]))
    for kind in ("PrizeAwarded", "CompetitionEntrySuccess"):
        urls.append(reverse("integrations:hub_edit_email", args=[hub.slug, kind]))
    return urls


@pytest.fixture
def editor(db, client):
    user = get_user_model().objects.create_user("marketer", password="pw-Marketer-2026",
                                                is_staff=True)
    hub, _ = hub_config_import(config=RICH)
    HubMembership.objects.create(user=user, hub=hub, role=HubRole.EDITOR)
    client.force_login(user)
    return hub


def post(client, url: str, data: dict[str, Any]):
    return client.post(url, {k: v if len(v) > 1 else v[0] for k, v in data.items()})


def test_every_editor_submitted_as_rendered_keeps_the_hub_json(editor, client) -> None:
    before = hub_config_export(editor)
    for url in editor_urls(editor):
        page = client.get(url)
        assert page.status_code == 200, url
        data = form_data(page.content.decode())
        assert data, url
        response = post(client, url, data)
        assert response.status_code == 302, (url, response.content.decode()[:3000])
        after = hub_config_export(Hub.objects.get(pk=editor.pk))
        assert hub_spec_from_config(after) == hub_spec_from_config(before), url
        # and the page shows the same form again
        again = form_data(client.get(url).content.decode())
        assert again == data, url


def test_form_export_import_gives_the_same_forms(editor, client) -> None:
    pages = {url: form_data(client.get(url).content.decode()) for url in editor_urls(editor)}
    exported = client.get(reverse("integrations:hub_export", args=[editor.slug])).json()
    assert exported["braze"]["api_key"] == "********"
    hub_config_import(config=exported)
    for url, data in pages.items():
        assert form_data(client.get(url).content.decode()) == data, url


def test_survey_answers_as_attributes_set_in_forms_land_in_the_json(editor, client) -> None:
    url = reverse("integrations:hub_edit_card", args=[editor.slug, "QuizStarted", "Poll"])
    data = form_data(client.get(url).content.decode())
    data["rule-landing"] = ["attributes"]
    data["upd-0-attribute"] = ["favourite_team"]
    data["upd-0-mode"] = ["set"]
    data["upd-0-field"] = ["answer"]
    assert post(client, url, data).status_code == 302
    rule = Hub.objects.get(pk=editor.pk).event_rules["QuizStarted"]
    assert rule["card_types"]["Poll"] == {
        "landing": "attributes",
        "attributes": [{"attribute": "favourite_team", "mode": "set", "field": "answer"}],
    }


@pytest.mark.parametrize(("typed", "meant"), [
    ("frist_name", "first_name"), ("email_subscibe", "email_subscribe"),
    ("date_of_birth", "dob"), ("First_Name", "first_name"), ("favourite_team", None),
    ("phone2", None), ("komo_entries", None),
])
def test_standard_attribute_near_misses(typed: str, meant: str | None) -> None:
    assert standard_attribute_near(typed) == meant


def test_a_misspelt_subscription_attribute_is_refused_with_did_you_mean() -> None:
    config = {**RICH, "mappings": [{"field": "optin", "attribute": "email_subscibe",
                                    "type": "subscription"}]}
    errors = {e.path: str(e.message) for e in validate_hub_spec(hub_spec_from_config(config))}
    assert "did you mean “email_subscribe”" in errors["mappings[0].attribute"]


def test_a_misspelt_event_kind_is_refused_and_a_new_one_needs_confirming() -> None:
    assert event_kind_near("CompetitionEntrySucess") == "CompetitionEntrySuccess"
    config = {**RICH, "events": ["CompetitionEntrySucess"], "event_rules": {},
              "transactional": {}}
    errors = {e.path: str(e.message) for e in validate_hub_spec(hub_spec_from_config(config))}
    assert "did you mean “CompetitionEntrySuccess”" in errors["events[0]"]
    unconfirmed = {**RICH, "new_event_kinds": []}
    errors = {e.path: str(e.message) for e in validate_hub_spec(hub_spec_from_config(unconfirmed))}
    assert "new Komo event kind" in errors["events[3]"]


def test_adding_an_unknown_kind_needs_the_confirmation_box(editor, client) -> None:
    url = reverse("integrations:hub_edit_events", args=[editor.slug])
    data = form_data(client.get(url).content.decode())
    data["new_kind"] = ["SwiperSwiped"]
    response = post(client, url, data)
    assert response.status_code == 400
    assert "confirm that it is a new Komo event kind" in response.content.decode()
    data["confirm_new"] = ["on"]
    assert post(client, url, data).status_code == 302
    hub = Hub.objects.get(pk=editor.pk)
    assert "SwiperSwiped" in hub.events and "SwiperSwiped" in hub.new_event_kinds


def test_a_typed_api_key_survives_an_error_and_never_returns_to_the_page(editor, client) -> None:
    url = reverse("integrations:hub_edit_connection", args=[editor.slug])
    response = client.post(url, {"braze_instance": "other",
                                 "custom_endpoint": "https://evil.example.com",
                                 "api_key": "typed-key-9876-abcd"})
    html = response.content.decode()
    assert response.status_code == 400
    assert "typed-key-9876-abcd" not in html
    assert "…abcd" in html
    assert re.search(r'<a href="#id_custom_endpoint">', html)  # the summary links to the error
    response = client.post(url, {"braze_instance": "https://rest.iad-01.braze.com",
                                 "custom_endpoint": "", "api_key": ""})
    assert response.status_code == 302
    assert Hub.objects.get(pk=editor.pk).connection.api_key == "typed-key-9876-abcd"


def test_one_click_switch_and_token_from_the_dashboard(editor, client) -> None:
    response = client.post(reverse("integrations:hub_token", args=[editor.slug]))
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    token = re.search(r'<code class="token" id="token">([^<]+)</code>', response.content.decode())
    assert token and Hub.objects.get(pk=editor.pk).ingest_token_hint == token.group(1)[-4:]
    client.post(reverse("integrations:hub_switch", args=[editor.slug]), {"active": "on"})
    assert Hub.objects.get(pk=editor.pk).active
    page = client.get(reverse("integrations:hub_dashboard", args=[editor.slug])).content.decode()
    assert "Switch off" in page and "Rotate webhook token" in page


def test_a_new_hub_starts_with_the_checklist(db, client) -> None:
    user = get_user_model().objects.create_user("m2", password="pw-Marketer-2026",
                                                is_staff=True)
    user.user_permissions.add(*__import__("django.contrib.auth.models", fromlist=["Permission"])
                              .Permission.objects.filter(codename="add_hub"))
    client.force_login(user)
    response = client.post(reverse("integrations:hub_create"), {"name": "Spring Cup"})
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert "Set-up checklist" in page and "of 6 done" in page

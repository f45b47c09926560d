"""Every Komo event kind against the Braze sandbox over real HTTP: events and attributes of one
person in one request, running totals and collected answers as Braze keeps them, nested card
objects, subscription groups, unknown kinds, held sessions, and the hub JSON that carries it all."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from integrations.braze.client import BrazeClient
from integrations.forms import HubForm
from integrations.mapping import map_submission
from integrations.models import Hub, Submission, SubmissionStatus
from integrations.services.braze_api import braze_client
from integrations.services.delivery import delivery_run
from integrations.services.engagement import mapping_contexts
from integrations.services.hubs import hub_config_export, hub_config_import
from integrations.services.intake import submission_receive
from integrations.spec import DOCUMENTED_EVENTS, hub_spec_from_config
from tests.conftest import DEMO_KEY, komo_entry

pytestmark = pytest.mark.django_db

GOLDEN_DIR = Path(__file__).parent / "golden"
PRIYA = {"alias_name": "priya.natarajan@example.com", "alias_label": "email"}


@pytest.fixture(autouse=True)
def _fresh_client_and_budget():
    from django.core.cache import cache

    cache.clear()
    braze_client.cache_clear()
    yield
    braze_client.cache_clear()


def golden(name: str) -> dict[str, Any]:
    return json.loads((GOLDEN_DIR / name).read_text(encoding="utf-8"))


SOURCES = {
    "CompetitionEntrySuccess": "event_competition_entry_success_alias_email.json",
    "SignUpSuccess": "event_sign_up_success_external_id.json",
    "PrizeAwarded": "event_prize_awarded.json",
    "CouponIssued": "event_coupon_issued.json",
    "QuizStarted": "event_quiz_started.json",
    "InstantWinStarted": "event_instant_win_started.json",
    "ScratchAndWinStarted": "event_scratch_and_win_started.json",
    "TriviaGameplayStarted": "event_trivia_gameplay_started.json",
    "PredictiveStarted": "event_predictive_started.json",
    "CardViewed": "event_card_viewed.json",
    "CardCoverClicked": "event_card_cover_clicked.json",
    "SiteViewed": "event_site_viewed.json",
    "CouponRedeemed": "unknown_kind_default.json",
}


def payload_of(kind: str, **changes: Any) -> dict[str, Any]:
    """A real-format body of ``kind`` (from its golden case) for Priya, with a fresh Komo id."""
    payload = copy.deepcopy(golden(SOURCES[kind])["payload"])
    payload.update({"email": "Priya.Natarajan@example.com", "id": f"{kind}-{timezone.now()}"})
    payload.update(changes)
    return payload


def receive(hub: Hub, payload: dict[str, Any]) -> Submission:
    return submission_receive(hub=hub, payload=payload).submission


def priya(sandbox) -> dict[str, Any]:
    profile = sandbox.find_profile(user_alias=PRIYA)
    assert profile is not None
    return profile


# --- one request, one person ------------------------------------------------------------------


def test_events_and_attributes_of_one_person_go_in_one_request(sandbox_hub, sandbox):
    # given: the default landing of a competition entry is attributes + komo_competition_entry
    hub, _ = sandbox_hub
    submission = receive(hub, komo_entry(email="Priya.Natarajan@example.com"))

    # when
    report = delivery_run(hub_id=hub.pk)

    # then
    assert report.requests == 1
    [request] = sandbox.requests()
    [attributes] = request["body"]["attributes"]
    [event] = request["body"]["events"]
    assert attributes["user_alias"] == event["user_alias"] == PRIYA
    assert event["name"] == "komo_competition_entry"
    assert event["time"] == submission.payload["timestamp"]
    assert event["properties"]["score"] == 7
    assert request["response"] == {
        "message": "success",
        "attributes_processed": 1,
        "events_processed": 1,
    }
    profile = priya(sandbox)
    assert profile["attributes"]["first_name"] == "Priya"
    assert [e["name"] for e in profile["events"]] == ["komo_competition_entry"]


def test_an_event_only_landing_still_creates_an_alias_person_first(make_hub, sandbox):
    # given: Braze never creates an alias from an event, so the identifier travels in front of it
    hub, _ = make_hub(
        endpoint=sandbox.url,
        events=["QuizStarted"],
        event_rules={"QuizStarted": {"landing": "event"}},
    )
    receive(hub, payload_of("QuizStarted"))

    # when
    delivery_run(hub_id=hub.pk)

    # then
    [request] = sandbox.requests()
    assert request["body"]["attributes"] == [{"user_alias": PRIYA, "_update_existing_only": False}]
    profile = priya(sandbox)
    assert [e["name"] for e in profile["events"]] == ["komo_quiz_started"]
    assert "first_name" not in profile["attributes"]


def test_every_documented_kind_with_its_defaults_is_accepted_by_braze(make_hub, sandbox):
    # given: a hub delivering every documented kind, one submission of each
    kinds = sorted(DOCUMENTED_EVENTS)
    hub, _ = make_hub(endpoint=sandbox.url, events=kinds)
    submissions = [receive(hub, payload_of(kind)) for kind in kinds]

    # when
    delivery_run(hub_id=hub.pk)

    # then
    statuses = {
        s.event: s.status for s in Submission.objects.filter(pk__in=[s.pk for s in submissions])
    }
    assert set(statuses.values()) == {SubmissionStatus.DELIVERED}, statuses
    assert all("errors" not in r["response"] for r in sandbox.requests())
    names = sorted(e["name"] for e in priya(sandbox)["events"])
    assert names == sorted(
        d.event_name for kind, d in DOCUMENTED_EVENTS.items() if d.landing != "attributes"
    )


DELIVERABLE_GOLDEN = [
    path for path in sorted(GOLDEN_DIR.glob("*.json")) if not golden(path.name)["expected"]["hold"]
]


@pytest.mark.parametrize("path", DELIVERABLE_GOLDEN, ids=lambda path: path.name)
def test_every_golden_body_is_valid_for_braze(path: Path, sandbox):
    # given
    case = golden(path.name)
    result = map_submission(hub_spec_from_config(case["hub"]), case["payload"])
    body = {"attributes": [result.attributes] if result.attributes else [], "events": result.events}
    body = {name: objects for name, objects in body.items() if objects}

    # when
    answer = BrazeClient().track(endpoint=sandbox.url, api_key=DEMO_KEY, body=body)

    # then
    assert answer.status_code == 201, answer.response_text
    assert answer.item_errors == ()


# --- running totals, collected answers, card objects -----------------------------------------

TOTALS_RULES = {
    "CompetitionEntrySuccess": {
        "attributes": [
            {"attribute": "komo_total_score", "mode": "inc", "field": "score"},
            {"attribute": "answers", "mode": "add", "field": "fav_team"},
            {"attribute": "komo_cards", "mode": "object"},
        ]
    }
}


def test_inc_adds_up_on_the_braze_profile(make_hub, sandbox):
    # given
    hub, _ = make_hub(
        endpoint=sandbox.url,
        event_rules=TOTALS_RULES,
        engagement_attributes={"entries": "komo_entries"},
    )
    for number, score in enumerate(("7", "3", "0", "5")):
        receive(hub, komo_entry(email="priya.natarajan@example.com", score=score, id=f"e{number}"))

    # when
    delivery_run(hub_id=hub.pk)

    # then
    attributes = priya(sandbox)["attributes"]
    assert attributes["komo_total_score"] == 15
    assert attributes["komo_entries"] == 4
    bodies = [r["body"] for r in sandbox.requests()]
    increments = [a.get("komo_total_score") for b in bodies for a in b["attributes"]]
    assert None in increments, "a score of 0 is not sent as an increment"


def test_collected_answers_keep_the_newest_within_braze_array_limit(make_hub, sandbox):
    # given: Braze keeps 25 items by default and drops the oldest
    hub, _ = make_hub(endpoint=sandbox.url, event_rules=TOTALS_RULES)
    for number in range(30):
        receive(
            hub,
            komo_entry(
                email="priya.natarajan@example.com", fav_team=f"team {number}", id=f"a{number}"
            ),
        )

    # when
    delivery_run(hub_id=hub.pk)

    # then
    assert sandbox.config()["array_limit"] == 25
    assert priya(sandbox)["attributes"]["answers"] == [f"team {n}" for n in range(5, 30)]


def test_one_nested_object_per_card_is_merged_not_replaced(make_hub, sandbox):
    # given: two cards, the first played twice
    hub, _ = make_hub(endpoint=sandbox.url, event_rules=TOTALS_RULES)
    plays = [("card-a", "Round 1", "3"), ("card-b", "Round 2", "9"), ("card-a", "Round 1", "4")]
    for number, (card_id, name, score) in enumerate(plays):
        receive(
            hub,
            komo_entry(
                email="priya.natarajan@example.com",
                card_id=card_id,
                card_name=name,
                score=score,
                id=f"c{number}",
            ),
        )
        delivery_run(hub_id=hub.pk)

    # then
    cards = priya(sandbox)["attributes"]["komo_cards"]
    assert set(cards) == {"card-a", "card-b"}
    assert cards["card-a"]["score"] == 4
    assert cards["card-b"]["card_name"] == "Round 2"
    assert set(cards["card-a"]["updated_at"]) == {"$time"}


def test_prizes_won_and_hubs_engaged_are_collected(make_hub, sandbox):
    # given
    hub, _ = make_hub(
        endpoint=sandbox.url,
        events=["CompetitionEntrySuccess", "PrizeAwarded"],
        engagement_attributes={
            "hubs_engaged": "komo_hubs_engaged",
            "last_engaged_at": "komo_last_engaged_at",
            "prizes_won": "komo_prizes_won",
        },
    )
    receive(hub, payload_of("CompetitionEntrySuccess"))
    prize = receive(hub, payload_of("PrizeAwarded"))

    # when
    delivery_run(hub_id=hub.pk)

    # then
    attributes = priya(sandbox)["attributes"]
    assert attributes["komo_hubs_engaged"] == ["Autumn Footy Tipping"]
    assert attributes["komo_prizes_won"] == ["First Prize"]
    assert attributes["komo_last_engaged_at"] == prize.payload["timestamp"]


def test_consent_sets_subscription_groups_on_the_profile(make_hub, sandbox):
    # given
    hub, _ = make_hub(
        endpoint=sandbox.url,
        mappings=[
            {"field": "email", "attribute": "email", "type": "email"},
            {
                "field": "optin",
                "attribute": "email_subscribe",
                "type": "subscription",
                "subscription_group_id": "group-email-news",
            },
            {
                "field": "sms_optin",
                "attribute": "subscription_groups",
                "type": "subscription",
                "on_false": "unsubscribed",
                "subscription_group_id": "group-sms",
            },
        ],
    )
    receive(hub, komo_entry(email="priya.natarajan@example.com", optin="true", sms_optin="no"))

    # when
    delivery_run(hub_id=hub.pk)

    # then
    profile = priya(sandbox)
    assert profile["attributes"]["email_subscribe"] == "opted_in"
    assert profile["subscription_groups"] == {
        "group-email-news": "subscribed",
        "group-sms": "unsubscribed",
    }


# --- what is not sent -----------------------------------------------------------------------


def test_a_session_that_never_identified_itself_is_held_not_sent(make_hub, sandbox):
    # given: a quiz start from an anonymous session (no email captured)
    hub, _ = make_hub(endpoint=sandbox.url, events=["QuizStarted"])
    submission = receive(hub, payload_of("QuizStarted", email=""))

    # when
    delivery_run(hub_id=hub.pk)

    # then
    submission.refresh_from_db()
    assert submission.status == SubmissionStatus.HELD
    assert "email" in submission.status_reason
    assert sandbox.requests() == []


def test_an_unknown_kind_is_stored_and_delivered_only_by_its_rule(make_hub, sandbox):
    # given: CouponRedeemed is not documented by Komo
    hub, _ = make_hub(endpoint=sandbox.url)
    ignored = receive(hub, payload_of("CouponRedeemed"))
    hub_config_import(
        config={
            **hub_config_export(hub),
            "events": ["CompetitionEntrySuccess", "CouponRedeemed"],
            "event_rules": {"CouponRedeemed": {"landing": "event"}},
            "new_event_kinds": ["CouponRedeemed"],
        }
    )
    hub.refresh_from_db()
    delivered = receive(hub, payload_of("CouponRedeemed"))

    # when
    delivery_run(hub_id=hub.pk)

    # then
    ignored.refresh_from_db()
    delivered.refresh_from_db()
    assert ignored.status == SubmissionStatus.IGNORED
    assert ignored.payload["event"] == "CouponRedeemed"
    assert delivered.status == SubmissionStatus.DELIVERED
    assert [e["name"] for e in priya(sandbox)["events"]] == ["komo_coupon_redeemed"]


def test_a_card_type_that_lands_nowhere_is_held_with_the_reason(make_hub, sandbox):
    # given
    hub, _ = make_hub(
        endpoint=sandbox.url,
        events=["QuizStarted"],
        event_rules={"QuizStarted": {"card_types": {"Poll": {"landing": "none"}}}},
    )
    poll = receive(hub, payload_of("QuizStarted", card_type="Poll"))
    quiz = receive(hub, payload_of("QuizStarted", id="quiz-2"))

    # when
    delivery_run(hub_id=hub.pk)

    # then
    poll.refresh_from_db()
    quiz.refresh_from_db()
    assert poll.status == SubmissionStatus.HELD
    assert "Poll" in poll.status_reason
    assert quiz.status == SubmissionStatus.DELIVERED
    assert len(priya(sandbox)["events"]) == 1


# --- first engagement -------------------------------------------------------------------------


def test_first_engagement_is_known_from_what_the_hub_delivered(make_hub, sandbox):
    # given
    hub, _ = make_hub(
        endpoint=sandbox.url, engagement_attributes={"first_engaged_at": "komo_first_engaged_at"}
    )
    earlier = receive(hub, komo_entry(email="a@example.com", id="x1"))
    Submission.objects.filter(pk=earlier.pk).update(status=SubmissionStatus.DELIVERED)
    again = receive(hub, komo_entry(email="a@example.com", id="x2"))
    new_first = receive(hub, komo_entry(email="b@example.com", id="x3"))
    new_second = receive(hub, komo_entry(email="b@example.com", id="x4"))
    Submission.objects.filter(pk=new_second.pk).update(
        komo_timestamp=new_first.komo_timestamp + timezone.timedelta(minutes=1)
    )
    batch = list(Submission.objects.filter(pk__in=[again.pk, new_first.pk, new_second.pk]))

    # when
    contexts = mapping_contexts(hub=hub, submissions=batch)

    # then
    assert {pk: c.first_engagement for pk, c in contexts.items()} == {
        again.pk: False,
        new_first.pk: True,
        new_second.pk: False,
    }
    result = map_submission(hub.to_spec(), new_first.payload, context=contexts[new_first.pk])
    assert result.attributes["komo_first_engaged_at"] == new_first.payload["timestamp"]
    assert "komo_first_engaged_at" not in map_submission(hub.to_spec(), again.payload).attributes


def test_first_engagement_is_not_looked_up_when_the_hub_does_not_keep_it(make_hub):
    hub, _ = make_hub()
    submission = receive(hub, komo_entry())

    assert mapping_contexts(hub=hub, submissions=[submission]) == {}


# --- the hub JSON and the hub form ------------------------------------------------------------

FULL_CONFIG_CHANGES: dict[str, Any] = {
    "events": ["CompetitionEntrySuccess", "PrizeAwarded", "QuizStarted"],
    "mappings": [
        {"field": "email", "attribute": "email", "type": "email", "on_error": "skip"},
        {
            "field": "optin",
            "attribute": "email_subscribe",
            "type": "subscription",
            "on_error": "skip",
            "subscription_group_id": "group-email-news",
        },
    ],
    "event_rules": {
        "QuizStarted": {
            "landing": "event",
            "event_name": "quiz_started",
            "properties": ["card_name", {"field": "score", "type": "number"}],
            "card_types": {
                "Personality": {
                    "landing": "attributes",
                    "attributes": [
                        {"attribute": "personality", "mode": "set", "field": "personality"}
                    ],
                }
            },
        }
    },
    "engagement_attributes": {"entries": "komo_entries", "prizes_won": "komo_prizes_won"},
    "transactional": {
        "PrizeAwarded": {"campaign_id": "prize-email", "trigger_properties": ["prize_name"]}
    },
}


def test_the_hub_json_round_trips_rules_engagement_emails_and_groups(make_hub):
    # given
    hub, _ = make_hub(**copy.deepcopy(FULL_CONFIG_CHANGES))

    # when
    exported = hub_config_export(hub)
    hub_config_import(config=copy.deepcopy(exported))
    again = hub_config_export(Hub.objects.get(pk=hub.pk))

    # then
    for key in ("events", "mappings", "event_rules", "engagement_attributes", "transactional"):
        assert exported[key] == FULL_CONFIG_CHANGES[key], key
    assert again == exported
    assert hub.to_spec().mappings[1].subscription_group_id == "group-email-news"


def test_import_explains_a_bad_rule_by_its_path(make_hub):
    from rest_framework.exceptions import ValidationError

    with pytest.raises(ValidationError) as caught:
        make_hub(event_rules={"CompetitionEntrySuccess": {"landing": "sideways"}})

    assert "event_rules.CompetitionEntrySuccess.landing" in caught.value.detail


def test_import_explains_a_wrong_shape_by_its_path(make_hub):
    from rest_framework.exceptions import ValidationError

    with pytest.raises(ValidationError) as caught:
        make_hub(transactional={"PrizeAwarded": "prize-email"})

    assert list(caught.value.detail) == ["transactional.PrizeAwarded"]


def hub_form(hub: Hub, **changes: Any) -> HubForm:
    data = {
        "name": hub.name,
        "slug": hub.slug,
        "identity_type": hub.identity_type,
        "identity_field": hub.identity_field,
        "alias_label": hub.alias_label,
        "events": "\n".join(hub.events),
        "create_missing_users": "on",
        "default_phone_region": hub.default_phone_region,
        "retention_days": hub.retention_days,
        **changes,
    }
    return HubForm(data=data, instance=hub)


def test_hub_form_edits_the_json_settings_and_keeps_the_stored_groups(make_hub):
    # given
    hub, _ = make_hub(**copy.deepcopy(FULL_CONFIG_CHANGES))
    rules = {"PrizeAwarded": {"landing": "event"}}

    # when
    form = hub_form(
        hub,
        events="CompetitionEntrySuccess\nPrizeAwarded",
        event_rules=json.dumps(rules),
        engagement_attributes=json.dumps({"hubs_engaged": "komo_hubs"}),
        transactional="",
    )
    assert form.is_valid(), form.errors
    form.save()

    # then
    hub.refresh_from_db()
    assert hub.event_rules == rules
    assert hub.transactional == {}
    assert hub_config_export(hub)["engagement_attributes"] == {"hubs_engaged": "komo_hubs"}
    assert hub.to_spec().mappings[1].subscription_group_id == "group-email-news"
    assert hub.engagement_attributes == {"hubs_engaged": "komo_hubs"}


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("event_rules", '{"CompetitionEntrySuccess": {"landing": "sideways"}}', "not a landing"),
        ("event_rules", '{"CompetitionEntrySuccess": {"event_name": "$x"}}', "cannot start"),
        ("event_rules", '{"QuizStarted": {"landing": "event"}}', "add it to the events"),
        ("event_rules", "[1]", "JSON object"),
        ("engagement_attributes", '{"entries": "email"}', "standard Braze attribute"),
        ("transactional", '{"PrizeAwarded": {"campaign_id": ""}}', "campaign ID"),
    ],
)
def test_hub_form_explains_bad_json_settings_on_their_field(make_hub, field, value, words):
    hub, _ = make_hub(events=["CompetitionEntrySuccess", "PrizeAwarded"])

    form = hub_form(hub, events="CompetitionEntrySuccess\nPrizeAwarded", **{field: value})

    assert not form.is_valid()
    assert any(words in message for message in form.errors[field]), form.errors


def test_card_objects_still_merge_on_a_hub_that_skips_unchanged_values(make_hub, sandbox):
    # given
    hub, _ = make_hub(endpoint=sandbox.url, event_rules=TOTALS_RULES)
    Hub.objects.filter(pk=hub.pk).update(skip_unchanged=True)
    for number, card_id in enumerate(("card-a", "card-b")):
        receive(
            hub, komo_entry(email="priya.natarajan@example.com", card_id=card_id, id=f"m{number}")
        )
        delivery_run(hub_id=hub.pk)

    # then
    assert set(priya(sandbox)["attributes"]["komo_cards"]) == {"card-a", "card-b"}


def mapping_rows(hub) -> list[dict[str, str]]:
    """The hub's mappings as admin inline form rows."""
    return [
        {
            "id": str(m.pk),
            "komo_field": m.komo_field,
            "attribute": m.attribute,
            "value_type": m.value_type,
        }
        for m in hub.mappings.all()
    ]


def test_the_admin_edits_a_mappings_subscription_group_and_the_json_settings(client, make_hub):
    from tests.test_admin import change_url, hub_form_data, user_create

    # given
    hub, _ = make_hub()
    client.force_login(user_create("root", superuser=True))
    rows = mapping_rows(hub)
    optin = next(row for row in rows if row["attribute"] == "email_subscribe")
    optin["subscription_group_id"] = "group-email-news"
    data = hub_form_data(hub, mappings=rows)
    data.update(
        events="CompetitionEntrySuccess\nPrizeAwarded",
        event_rules=json.dumps({"PrizeAwarded": {"landing": "event"}}),
        engagement_attributes=json.dumps({"prizes_won": "komo_prizes_won"}),
        transactional=json.dumps({"PrizeAwarded": {"campaign_id": "prize-email"}}),
    )

    # when
    response = client.post(change_url(hub), data)

    # then
    assert response.status_code == 302, response.context["errors"]
    exported = hub_config_export(Hub.objects.get(pk=hub.pk))
    [mapping] = [m for m in exported["mappings"] if m["attribute"] == "email_subscribe"]
    assert mapping["subscription_group_id"] == "group-email-news"
    assert exported["event_rules"] == {"PrizeAwarded": {"landing": "event"}}
    assert exported["engagement_attributes"] == {"prizes_won": "komo_prizes_won"}
    assert exported["transactional"] == {"PrizeAwarded": {"campaign_id": "prize-email"}}
    page = client.get(change_url(hub)).content.decode()
    assert 'value="group-email-news"' in page


def test_the_admin_explains_a_group_on_a_mapping_that_is_no_subscription(client, make_hub):
    from tests.test_admin import change_url, hub_form_data, user_create

    hub, _ = make_hub()
    client.force_login(user_create("root", superuser=True))
    rows = mapping_rows(hub)
    rows[1]["subscription_group_id"] = "group-1"  # first_name: a string mapping

    response = client.post(change_url(hub), hub_form_data(hub, mappings=rows))

    assert response.status_code == 200
    assert "only applies to the subscription type" in response.content.decode()

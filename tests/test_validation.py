"""Unit tests of integrations.validation: every configuration mistake it promises to catch."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils.functional import Promise
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from integrations.braze.attributes import STANDARD_ATTRIBUTES
from integrations.mapping import map_submission
from integrations.spec import (
    IDENTITY_TYPES,
    VALUE_TYPES,
    FieldMappingSpec,
    HubSpec,
    IdentitySpec,
    hub_spec_from_config,
)
from integrations.validation import ConfigError, validate_hub_spec

DESIGN_EXAMPLE: dict[str, Any] = {
    "identity": {"type": "alias_email", "field": "email", "alias_label": "email"},
    "create_missing_users": True,
    "default_phone_region": "AU",
    "events": ["CompetitionEntrySuccess"],
    "mappings": [
        {"field": "first_name", "attribute": "first_name"},
        {"field": "mobile", "attribute": "phone", "type": "phone", "on_error": "hold"},
        {"field": "birthday", "attribute": "dob", "type": "date"},
        {"field": "optin", "attribute": "email_subscribe", "type": "subscription"},
        {"field": "fav_team", "attribute": "favourite_team", "type": "string"},
    ],
}
MEMBER = IdentitySpec(type="external_id", field="member_number")


def spec_with(
    *mappings: FieldMappingSpec, identity: IdentitySpec = MEMBER, region: str = "AU"
) -> HubSpec:
    return HubSpec(identity=identity, mappings=mappings, default_phone_region=region)


def paths(errors: list[ConfigError]) -> list[str]:
    return [error.path for error in errors]


def only_message(errors: list[ConfigError], path: str) -> str:
    messages = [str(error.message) for error in errors if error.path == path]
    assert len(messages) == 1, [(e.path, str(e.message)) for e in errors]
    return messages[0]


def test_design_example_is_valid() -> None:
    assert validate_hub_spec(hub_spec_from_config(DESIGN_EXAMPLE)) == []


def test_design_example_is_valid_with_its_known_fields() -> None:
    known = {"email", "first_name", "mobile", "birthday", "optin", "fav_team"}

    assert validate_hub_spec(hub_spec_from_config(DESIGN_EXAMPLE), known_fields=known) == []


# --------------------------------------------------------------------------------------------
# Identity


def test_unknown_identity_type() -> None:
    errors = validate_hub_spec(spec_with(identity=IdentitySpec("username", "uid")))

    assert paths(errors) == ["identity.type"]
    assert "external_id" in only_message(errors, "identity.type")


@pytest.mark.parametrize("identity_type", ["alias_email", "alias_phone"])
@pytest.mark.parametrize("label", ["", "   "])
def test_alias_identity_needs_a_label(identity_type: str, label: str) -> None:
    errors = validate_hub_spec(spec_with(identity=IdentitySpec(identity_type, "uid", label)))

    assert paths(errors) == ["identity.alias_label"]


@pytest.mark.parametrize("identity_type", ["external_id", "braze_id", "email", "phone"])
def test_other_identities_need_no_label(identity_type: str) -> None:
    assert validate_hub_spec(spec_with(identity=IdentitySpec(identity_type, "uid"))) == []


@pytest.mark.parametrize("field", ["", "  ", "id", "event", "timestamp"])
def test_identity_field_must_be_a_person_field(field: str) -> None:
    errors = validate_hub_spec(spec_with(identity=IdentitySpec("external_id", field)))

    assert paths(errors) == ["identity.field"]


def test_identity_may_use_the_komo_profile_id() -> None:
    spec = spec_with(identity=IdentitySpec("external_id", "user_profile_id"))

    assert validate_hub_spec(spec) == []


def test_identity_field_must_be_known_when_known_fields_are_given() -> None:
    errors = validate_hub_spec(spec_with(), known_fields={"email"})

    assert paths(errors) == ["identity.field"]
    assert "member_number" in only_message(errors, "identity.field")


# --------------------------------------------------------------------------------------------
# Mapping types and options


def test_unknown_value_type() -> None:
    errors = validate_hub_spec(spec_with(FieldMappingSpec("f", "custom", type="text")))

    assert paths(errors) == ["mappings[0].type"]


def test_unknown_on_error() -> None:
    errors = validate_hub_spec(spec_with(FieldMappingSpec("f", "custom", on_error="retry")))

    assert paths(errors) == ["mappings[0].on_error"]


@pytest.mark.parametrize("on_false", ["subscribed", "unsubscribed"])
def test_on_false_on_a_subscription_is_valid(on_false: str) -> None:
    mapping = FieldMappingSpec("optin", "email_subscribe", type="subscription", on_false=on_false)

    assert validate_hub_spec(spec_with(mapping)) == []


@pytest.mark.parametrize("value_type", ["boolean", "string"])
def test_on_false_only_applies_to_subscriptions(value_type: str) -> None:
    mapping = FieldMappingSpec("optin", "custom", type=value_type, on_false="unsubscribed")

    assert paths(validate_hub_spec(spec_with(mapping))) == ["mappings[0].on_false"]


@pytest.mark.parametrize("on_false", ["opted_in", "false", "Unsubscribed", ""])
def test_on_false_must_be_subscribed_or_unsubscribed(on_false: str) -> None:
    mapping = FieldMappingSpec("optin", "email_subscribe", type="subscription", on_false=on_false)

    assert paths(validate_hub_spec(spec_with(mapping))) == ["mappings[0].on_false"]


# --------------------------------------------------------------------------------------------
# Attribute names


@pytest.mark.parametrize(
    ("attribute", "suggestion"),
    [
        ("First_Name", "first_name"),
        ("Email", "email"),
        ("DOB", "dob"),
        ("FirstName", "first_name"),
        ("first name", "first_name"),
        ("Email_Subscribe", "email_subscribe"),
    ],
)
def test_mis_spelled_standard_attribute_suggests_the_braze_name(
    attribute: str, suggestion: str
) -> None:
    errors = validate_hub_spec(spec_with(FieldMappingSpec("f", attribute)))

    assert paths(errors) == ["mappings[0].attribute"]
    assert f"did you mean “{suggestion}”" in only_message(errors, "mappings[0].attribute")


@pytest.mark.parametrize(
    ("attribute", "required"),
    [
        (name, value_type)
        for name, value_type in STANDARD_ATTRIBUTES.items()
        if value_type is not None and value_type != "string"
    ],
)
def test_standard_attribute_needs_its_type(attribute: str, required: str) -> None:
    wrong = "string"
    right = FieldMappingSpec("f", attribute, type=required)

    errors = validate_hub_spec(spec_with(FieldMappingSpec("f", attribute, type=wrong)))

    assert paths(errors) == ["mappings[0].attribute"]
    assert f"“{required}”" in only_message(errors, "mappings[0].attribute")
    assert validate_hub_spec(spec_with(right)) == []


def test_standard_string_attribute_refuses_other_types() -> None:
    errors = validate_hub_spec(spec_with(FieldMappingSpec("f", "first_name", type="number")))

    assert paths(errors) == ["mappings[0].attribute"]


@pytest.mark.parametrize("attribute", ["current_location", "subscription_groups", "push_tokens"])
def test_structured_standard_attributes_cannot_be_mapped(attribute: str) -> None:
    errors = validate_hub_spec(spec_with(FieldMappingSpec("f", attribute)))

    assert paths(errors) == ["mappings[0].attribute"]


def test_two_mappings_to_the_same_attribute() -> None:
    spec = spec_with(
        FieldMappingSpec("first_name", "first_name"),
        FieldMappingSpec("fav_team", "favourite_team"),
        FieldMappingSpec("given_name", "first_name"),
    )

    errors = validate_hub_spec(spec)

    assert paths(errors) == ["mappings[2].attribute"]
    assert "mapping 1" in only_message(errors, "mappings[2].attribute")


def test_one_field_may_feed_two_attributes() -> None:
    spec = spec_with(
        FieldMappingSpec("score", "quiz_score", type="number"),
        FieldMappingSpec("score", "quiz_score_text"),
    )

    assert validate_hub_spec(spec) == []


@pytest.mark.parametrize(
    "attribute", ["external_id", "braze_id", "user_alias", "_update_existing_only", "External_ID"]
)
def test_identifier_keys_cannot_be_mapped(attribute: str) -> None:
    errors = validate_hub_spec(spec_with(FieldMappingSpec("f", attribute)))

    assert paths(errors) == ["mappings[0].attribute"]
    assert "identity" in only_message(errors, "mappings[0].attribute")


@pytest.mark.parametrize(("identity_type", "attribute"), [("email", "email"), ("phone", "phone")])
def test_identifier_attribute_cannot_also_be_mapped(identity_type: str, attribute: str) -> None:
    spec = spec_with(
        FieldMappingSpec("other", attribute, type=attribute),
        identity=IdentitySpec(identity_type, "uid"),
    )

    assert paths(validate_hub_spec(spec)) == ["mappings[0].attribute"]


@pytest.mark.parametrize("identity_type", ["external_id", "braze_id", "alias_email"])
def test_email_and_phone_may_be_mapped_beside_other_identifiers(identity_type: str) -> None:
    spec = spec_with(
        FieldMappingSpec("email", "email", type="email"),
        FieldMappingSpec("mobile", "phone", type="phone"),
        identity=IdentitySpec(identity_type, "email", alias_label="email"),
    )

    assert validate_hub_spec(spec) == []


@pytest.mark.parametrize("attribute", ["", "   ", "x" * 256, "$price", " padded", "padded "])
def test_attribute_names_braze_rejects(attribute: str) -> None:
    errors = validate_hub_spec(spec_with(FieldMappingSpec("f", attribute)))

    assert paths(errors) == ["mappings[0].attribute"]


@pytest.mark.parametrize("attribute", ["x" * 255, "favourite team", "price$", "Favourite_Team"])
def test_attribute_names_braze_accepts(attribute: str) -> None:
    assert validate_hub_spec(spec_with(FieldMappingSpec("f", attribute))) == []


# --------------------------------------------------------------------------------------------
# Komo fields


@pytest.mark.parametrize("field", ["id", "event", "timestamp", "", " "])
def test_event_envelope_keys_cannot_be_mapped(field: str) -> None:
    errors = validate_hub_spec(spec_with(FieldMappingSpec(field, "custom")))

    assert paths(errors) == ["mappings[0].field"]


@pytest.mark.parametrize(
    "field", ["score", "correct", "card_name", "card_type", "prize_name", "coupon_code"]
)
def test_other_envelope_keys_may_be_mapped(field: str) -> None:
    assert validate_hub_spec(spec_with(FieldMappingSpec(field, "custom"))) == []


def test_mapping_field_must_be_known_when_known_fields_are_given() -> None:
    spec = spec_with(FieldMappingSpec("first_name", "first_name"), FieldMappingSpec("x", "x"))

    errors = validate_hub_spec(spec, known_fields={"member_number", "first_name"})

    assert paths(errors) == ["mappings[1].field"]


def test_without_known_fields_any_field_name_is_accepted() -> None:
    assert validate_hub_spec(spec_with(FieldMappingSpec("anything", "custom"))) == []


# --------------------------------------------------------------------------------------------
# Phone region


@pytest.mark.parametrize("region", ["XX", "UK", "AUS", "1"])
def test_unknown_phone_region(region: str) -> None:
    spec = spec_with(FieldMappingSpec("mobile", "phone", type="phone"), region=region)

    assert paths(validate_hub_spec(spec)) == ["default_phone_region"]


def test_unknown_phone_region_is_refused_even_without_phone_fields() -> None:
    assert paths(validate_hub_spec(spec_with(region="XX"))) == ["default_phone_region"]


@pytest.mark.parametrize(
    "spec",
    [
        spec_with(FieldMappingSpec("mobile", "phone", type="phone"), region=""),
        spec_with(identity=IdentitySpec("phone", "mobile"), region=""),
        spec_with(identity=IdentitySpec("alias_phone", "mobile", "mobile"), region=""),
    ],
)
def test_reading_phone_numbers_needs_a_region(spec: HubSpec) -> None:
    assert paths(validate_hub_spec(spec)) == ["default_phone_region"]


@pytest.mark.parametrize("region", ["AU", "au", "NZ", "GB"])
def test_valid_phone_regions(region: str) -> None:
    spec = spec_with(FieldMappingSpec("mobile", "phone", type="phone"), region=region)

    assert validate_hub_spec(spec) == []


def test_no_region_is_fine_without_phone_numbers() -> None:
    assert validate_hub_spec(spec_with(FieldMappingSpec("f", "first_name"), region="")) == []


# --------------------------------------------------------------------------------------------
# Shape of the answer


def test_errors_come_in_hub_json_order_with_translatable_messages() -> None:
    spec = HubSpec(
        identity=IdentitySpec("alias_email", "id", ""),
        mappings=(
            FieldMappingSpec("timestamp", "Email", type="email"),
            FieldMappingSpec("mobile", "phone", type="telephone", on_error="later"),
        ),
        default_phone_region="ZZ",
    )

    errors = validate_hub_spec(spec)

    assert paths(errors) == [
        "identity.field",
        "identity.alias_label",
        "mappings[0].field",
        "mappings[0].attribute",
        "mappings[1].type",
        "mappings[1].on_error",
        "default_phone_region",
    ]
    assert all(isinstance(error.message, Promise) for error in errors)


mapping_specs = st.builds(
    FieldMappingSpec,
    field=st.sampled_from(["email", "mobile", "id", "score"]),
    attribute=st.sampled_from(["first_name", "email", "phone", "dob", "Email", "custom", "$x"]),
    type=st.sampled_from([*VALUE_TYPES, "text"]),
    on_error=st.sampled_from(["skip", "hold", "retry"]),
    on_false=st.sampled_from([None, "subscribed", "unsubscribed", "opted_in"]),
)
hub_specs = st.builds(
    HubSpec,
    identity=st.builds(
        IdentitySpec,
        type=st.sampled_from([*IDENTITY_TYPES, "username"]),
        field=st.sampled_from(["email", "mobile", "id"]),
        alias_label=st.sampled_from(["", "label"]),
    ),
    mappings=st.lists(mapping_specs, max_size=4).map(tuple),
    default_phone_region=st.sampled_from(["AU", "", "XX"]),
)


payloads = st.dictionaries(st.sampled_from(["email", "mobile", "score"]), st.text())


# Most random specs are invalid (that is the point of the generator), so filtering is expected.
@settings(deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(spec=hub_specs, payload=payloads)
def test_a_spec_without_errors_is_one_the_mapper_accepts(spec: HubSpec, payload: dict) -> None:
    assume(validate_hub_spec(spec) == [])

    map_submission(spec, payload)  # raises ValueError for a spec it refuses


# --------------------------------------------------------------------------------------------
# Event rules, engagement attributes, transactional emails, subscription groups


def config_with(**changes: Any) -> HubSpec:
    """The DESIGN example delivering entries, prizes and quiz starts, with ``changes``."""
    config = {
        **DESIGN_EXAMPLE,
        "events": ["CompetitionEntrySuccess", "PrizeAwarded", "QuizStarted"],
        **changes,
    }
    return hub_spec_from_config(config)


def errors_of(**changes: Any) -> dict[str, str]:
    return {error.path: str(error.message) for error in validate_hub_spec(config_with(**changes))}


def test_rules_engagement_and_emails_that_make_sense_are_valid() -> None:
    spec = config_with(
        event_rules={
            "QuizStarted": {
                "landing": "both",
                "event_name": "quiz_started",
                "properties": ["card_name", {"field": "score", "property": "points"}],
                "attributes": [
                    {"attribute": "quiz_points", "mode": "inc", "field": "score"},
                    {"attribute": "quizzes", "mode": "add", "field": "card_name"},
                    {"attribute": "quiz_cards", "mode": "object", "fields": ["score"]},
                ],
                "card_types": {"Poll": {"landing": "none"}},
            },
            "CardViewed": {"landing": "none"},
        },
        engagement_attributes={"hubs_engaged": "komo_hubs", "entries": "komo_entries"},
        transactional={"PrizeAwarded": {"campaign_id": "0e5c2f8a-prize"}},
    )

    assert validate_hub_spec(spec) == []


@pytest.mark.parametrize(
    ("rule", "path", "words"),
    [
        ({"landing": "sideways"}, "event_rules.QuizStarted.landing", "not a landing"),
        ({"event_name": ""}, "event_rules.QuizStarted.event_name", "Enter the Braze event name"),
        ({"event_name": " quiz"}, "event_rules.QuizStarted.event_name", "spaces"),
        ({"event_name": "$quiz"}, "event_rules.QuizStarted.event_name", "“$”"),
        ({"event_name": "q" * 256}, "event_rules.QuizStarted.event_name", "at most 255"),
        ({"landing": "none"}, "event_rules.QuizStarted.landing", "remove it from the events"),
        ({"properties": ["time"]}, "event_rules.QuizStarted.properties[0].property", "reserved"),
        (
            {"properties": [{"field": "x", "property": "$x"}]},
            "event_rules.QuizStarted.properties[0].property",
            "cannot start",
        ),
        (
            {"properties": ["score", "score"]},
            "event_rules.QuizStarted.properties[1].property",
            "already property 1",
        ),
        (
            {"properties": [{"field": "x", "type": "phone"}]},
            "event_rules.QuizStarted.properties[0].type",
            "not a property type",
        ),
        (
            {"properties": [f"answer_{n}" for n in range(257)]},
            "event_rules.QuizStarted.properties",
            "at most 256",
        ),
        (
            {"attributes": [{"attribute": "total", "mode": "inc", "field": "card_name"}]},
            "event_rules.QuizStarted.attributes[0].field",
            "never a number",
        ),
        (
            {"attributes": [{"attribute": "t", "mode": "inc", "field": "n", "type": "string"}]},
            "event_rules.QuizStarted.attributes[0].type",
            "always a number",
        ),
        (
            {"attributes": [{"attribute": "t", "mode": "sum", "field": "score"}]},
            "event_rules.QuizStarted.attributes[0].mode",
            "not an update mode",
        ),
        (
            {"attributes": [{"attribute": "t", "mode": "set"}]},
            "event_rules.QuizStarted.attributes[0].field",
            "Enter the Komo field",
        ),
        (
            {"attributes": [{"attribute": "favourite_team", "mode": "set", "field": "x"}]},
            "event_rules.QuizStarted.attributes[0].attribute",
            "mapping 5",
        ),
        (
            {"attributes": [{"attribute": "email_subscribe", "mode": "add", "field": "x"}]},
            "event_rules.QuizStarted.attributes[0].attribute",
            "standard Braze attribute",
        ),
        (
            {"attributes": [{"attribute": "external_id", "mode": "set", "field": "x"}]},
            "event_rules.QuizStarted.attributes[0].attribute",
            "identifies the user",
        ),
        (
            {"attributes": [{"attribute": "cards", "mode": "object", "fields": ["a.b"]}]},
            "event_rules.QuizStarted.attributes[0].fields[0].property",
            "nested object",
        ),
        (
            {"attributes": [{"attribute": "cards", "mode": "add", "fields": ["x"], "field": "y"}]},
            "event_rules.QuizStarted.attributes[0].fields",
            "only applies",
        ),
        (
            {"card_types": {"Poll": {"landing": "nowhere"}}},
            "event_rules.QuizStarted.card_types.Poll.landing",
            "not a landing",
        ),
    ],
)
def test_a_bad_event_rule_is_explained_where_it_is(rule: dict, path: str, words: str) -> None:
    errors = errors_of(event_rules={"QuizStarted": rule})

    assert path in errors, errors
    assert words in errors[path]


def test_a_rule_for_a_kind_the_hub_does_not_deliver_says_to_add_it() -> None:
    errors = errors_of(event_rules={"SignUpSuccess": {"landing": "event"}})

    assert "add it to the events" in errors["event_rules.SignUpSuccess"]


def test_a_rule_keyed_by_something_that_is_no_komo_event_name_is_refused() -> None:
    errors = errors_of(event_rules={"quiz started!": {"landing": "none"}})

    assert "not a Komo event name" in errors["event_rules.quiz started!"]


@pytest.mark.parametrize(
    ("engagement", "path", "words"),
    [
        ({"entries": "email"}, "engagement_attributes.entries", "standard Braze attribute"),
        ({"entries": "favourite_team"}, "engagement_attributes.entries", "mapping 5"),
        (
            {"entries": "komo_x", "prizes_won": "komo_x"},
            "engagement_attributes.prizes_won",
            "already used",
        ),
        ({"hubs_engaged": "$hubs"}, "engagement_attributes.hubs_engaged", "“$”"),
    ],
)
def test_bad_engagement_attributes_are_explained(engagement: dict, path: str, words: str) -> None:
    errors = errors_of(engagement_attributes=engagement)

    assert words in errors[path], errors


@pytest.mark.parametrize(
    ("transactional", "path", "words"),
    [
        ({"PrizeAwarded": {"campaign_id": ""}}, "transactional.PrizeAwarded.campaign_id", "ID"),
        (
            {"PrizeAwarded": {"campaign_id": "a/b"}},
            "transactional.PrizeAwarded.campaign_id",
            "campaign ID",
        ),
        ({"CouponIssued": {"campaign_id": "c1"}}, "transactional.CouponIssued", "never be sent"),
        (
            {"PrizeAwarded": {"campaign_id": "c1", "trigger_properties": ["event_name"]}},
            "transactional.PrizeAwarded.trigger_properties[0].property",
            "reserved",
        ),
    ],
)
def test_bad_transactional_emails_are_explained(transactional: dict, path: str, words: str) -> None:
    errors = errors_of(transactional=transactional)

    assert words in errors[path], errors


@pytest.mark.parametrize("identity_type", ["email", "phone", "braze_id"])
def test_transactional_emails_need_an_identity_braze_can_address(identity_type: str) -> None:
    errors = errors_of(
        identity={"type": identity_type, "field": "uid"},
        mappings=[],
        default_phone_region="AU",
        transactional={"PrizeAwarded": {"campaign_id": "c1"}},
    )

    assert "external ID or user alias" in errors["transactional"]


@pytest.mark.parametrize("identity_type", ["external_id", "alias_email", "alias_phone"])
def test_transactional_emails_work_with_external_ids_and_aliases(identity_type: str) -> None:
    errors = errors_of(
        identity={"type": identity_type, "field": "uid", "alias_label": "label"},
        mappings=[],
        transactional={"PrizeAwarded": {"campaign_id": "c1"}},
    )

    assert errors == {}


@pytest.mark.parametrize(
    ("mapping", "words"),
    [
        ({"field": "optin", "attribute": "news", "subscription_group_id": "g1"}, "only applies"),
        (
            {
                "field": "optin",
                "attribute": "news",
                "type": "subscription",
                "subscription_group_id": "not a group",
            },
            "not a Braze subscription group ID",
        ),
    ],
)
def test_a_bad_subscription_group_is_explained(mapping: dict, words: str) -> None:
    errors = errors_of(mappings=[mapping])

    assert words in errors["mappings[0].subscription_group_id"]


def test_subscription_groups_alone_need_a_group_and_each_group_is_set_once() -> None:
    group_only = {"field": "sms", "attribute": "subscription_groups", "type": "subscription"}
    with_group = {"field": "push", "attribute": "push_news", "type": "subscription"}

    errors = errors_of(
        mappings=[
            group_only,
            {**with_group, "subscription_group_id": "g1"},
            {**with_group, "attribute": "push_more", "subscription_group_id": "g1"},
        ]
    )

    assert "enter the group's ID" in errors["mappings[0].attribute"]
    assert "already sets this subscription group" in errors["mappings[2].subscription_group_id"]
    assert (
        validate_hub_spec(config_with(mappings=[{**group_only, "subscription_group_id": "g2"}]))
        == []
    )


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"event_rules": []}, "event_rules"),
        ({"event_rules": {"QuizStarted": {"landing": 3}}}, "event_rules.QuizStarted.landing"),
        ({"event_rules": {"QuizStarted": {"colour": "red"}}}, "event_rules.QuizStarted.colour"),
        (
            {"event_rules": {"QuizStarted": {"attributes": [{"attribute": "a"}]}}},
            "event_rules.QuizStarted.attributes[0].mode",
        ),
        ({"engagement_attributes": {"favourite": "x"}}, "engagement_attributes.favourite"),
        ({"transactional": {"PrizeAwarded": "c1"}}, "transactional.PrizeAwarded"),
    ],
)
def test_a_wrong_shape_is_named_by_its_path(changes: dict, path: str) -> None:
    from integrations.spec import ConfigShapeError

    with pytest.raises(ConfigShapeError) as caught:
        config_with(**changes)

    assert caught.value.path == path


rule_patches = st.fixed_dictionaries(
    {},
    optional={
        "landing": st.sampled_from(["event", "attributes", "both", "none", "sideways"]),
        "event_name": st.sampled_from(["komo_x", "", "$x"]),
        "properties": st.lists(
            st.sampled_from(["score", "card_name", "time", {"field": "a", "type": "date"}]),
            max_size=3,
        ),
        "attributes": st.lists(
            st.fixed_dictionaries(
                {
                    "attribute": st.sampled_from(["a", "b", "email", "favourite_team"]),
                    "mode": st.sampled_from(["set", "inc", "add", "object", "sum"]),
                },
                optional={
                    "field": st.sampled_from(["score", "card_name", "answer"]),
                    "type": st.sampled_from(["number", "string", "date", "subscription"]),
                },
            ),
            max_size=3,
        ),
    },
)
rule_payloads = st.fixed_dictionaries(
    {
        "event": st.sampled_from(["QuizStarted", "PrizeAwarded", "Other"]),
        "email": st.just("a@b.co"),
    },
    optional={
        "timestamp": st.sampled_from(["2026-03-14T09:26:53.589Z", "later", ""]),
        "score": st.sampled_from(["7", "x", "0", ""]),
        "card_id": st.sampled_from(["card-1", "a.b", ""]),
        "card_type": st.sampled_from(["Poll", "Quiz"]),
        "answer": st.text(max_size=5),
    },
)


@settings(deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(
    rule=rule_patches,
    card_rule=rule_patches,
    payload=rule_payloads,
)
def test_event_rules_without_errors_are_ones_the_mapper_accepts(
    rule: dict, card_rule: dict, payload: dict
) -> None:
    spec = config_with(event_rules={"QuizStarted": {**rule, "card_types": {"Poll": card_rule}}})
    assume(validate_hub_spec(spec) == [])

    result = map_submission(spec, payload)  # raises ValueError for a spec it refuses

    assert result.deliverable or result.hold_reason


def test_a_braze_control_flag_is_not_an_attribute() -> None:
    errors = errors_of(
        mappings=[{"field": "x", "attribute": "_merge_objects"}],
        engagement_attributes={"entries": "push_token_import"},
    )

    assert "steers how Braze" in errors["mappings[0].attribute"]
    assert "steers how Braze" in errors["engagement_attributes.entries"]


# --- braze_id hubs cannot know a first engagement (issue 10) --------------------------------


def test_a_braze_id_hub_cannot_keep_first_engaged_at() -> None:
    # The portal knows a first engagement by the person key it stores per submission (email,
    # phone, external id); a braze_id hub has none, so first_engaged_at would never be sent.
    errors = errors_of(
        identity={"type": "braze_id", "field": "braze_id"},
        engagement_attributes={"first_engaged_at": "komo_first", "last_engaged_at": "komo_last"},
    )

    assert "braze_id" in errors["engagement_attributes.first_engaged_at"], errors
    assert "engagement_attributes.last_engaged_at" not in errors


@pytest.mark.parametrize(
    "identity",
    [
        {"type": "external_id", "field": "user_id"},
        {"type": "alias_email", "field": "email", "alias_label": "email"},
        {"type": "email", "field": "email"},
        {"type": "alias_phone", "field": "mobile", "alias_label": "mobile"},
        {"type": "phone", "field": "mobile"},
    ],
    ids=lambda identity: identity["type"],
)
def test_first_engaged_at_is_fine_for_identities_with_a_person_key(identity: dict) -> None:
    errors = errors_of(
        identity=identity,
        default_phone_region="AU",
        engagement_attributes={"first_engaged_at": "komo_first"},
    )

    assert "engagement_attributes.first_engaged_at" not in errors, errors


def test_validation_refuses_first_engaged_at_exactly_where_there_is_no_person_key() -> None:
    from integrations.services.engagement import _PERSON_COLUMN
    from integrations.spec import IDENTITY_TYPES

    refused = {
        identity_type
        for identity_type in IDENTITY_TYPES
        if "engagement_attributes.first_engaged_at"
        in errors_of(
            identity={"type": identity_type, "field": "mobile", "alias_label": "x"},
            default_phone_region="AU",
            engagement_attributes={"first_engaged_at": "komo_first"},
        )
    }
    assert refused == set(IDENTITY_TYPES) - set(_PERSON_COLUMN)

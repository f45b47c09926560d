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

"""Unit tests of integrations.mapping: one group per user-facing rule."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.utils.functional import Promise

from integrations.event_mapping import MappingContext
from integrations.mapping import (
    ABSENT,
    MappingResult,
    Problem,
    ValueProblem,
    convert_value,
    map_submission,
    transactional_request,
)
from integrations.spec import (
    FieldMappingSpec,
    HubSpec,
    IdentitySpec,
    card_type_key,
    default_event_name,
    hub_spec_from_config,
    resolve_event_rule,
)
from integrations.values import to_utc_time

MEMBER = IdentitySpec(type="external_id", field="member_number")


def spec_with(
    *mappings: FieldMappingSpec,
    identity: IdentitySpec = MEMBER,
    create_missing_users: bool = True,
    region: str = "AU",
) -> HubSpec:
    return HubSpec(
        identity=identity,
        mappings=mappings,
        create_missing_users=create_missing_users,
        default_phone_region=region,
    )


def convert(
    value_type: str,
    raw: Any,
    *,
    attribute: str = "custom",
    on_false: str | None = None,
    region: str = "AU",
) -> Any:
    mapping = FieldMappingSpec(field="f", attribute=attribute, type=value_type, on_false=on_false)
    return convert_value(mapping, raw, default_phone_region=region)


def problem_code(value_type: str, raw: Any, **kwargs: Any) -> str:
    with pytest.raises(ValueProblem) as caught:
        convert(value_type, raw, **kwargs)
    return caught.value.code


def exact(value: Any) -> str:
    """Tells 7 from 7.0 and True from 1."""
    return json.dumps(value)


# --------------------------------------------------------------------------------------------
# Absent values

ALL_BUT_BOOLEAN_AND_SUBSCRIPTION = [
    "string",
    "number",
    "date",
    "phone",
    "email",
    "country",
    "gender",
    "array",
]


@pytest.mark.parametrize("value_type", ALL_BUT_BOOLEAN_AND_SUBSCRIPTION)
@pytest.mark.parametrize("raw", [None, "", "   ", "\t\n", []])
def test_blank_values_are_absent_not_problems(value_type: str, raw: Any) -> None:
    assert convert(value_type, raw) is ABSENT


@pytest.mark.parametrize("value_type", ALL_BUT_BOOLEAN_AND_SUBSCRIPTION + ["boolean"])
def test_a_missing_key_sends_nothing(value_type: str) -> None:
    # given
    spec = spec_with(FieldMappingSpec(field="f", attribute="custom", type=value_type))

    # when
    result = map_submission(spec, {"member_number": "M1"})

    # then
    assert result.attributes == {"external_id": "M1", "_update_existing_only": False}
    assert result.problems == []


# --------------------------------------------------------------------------------------------
# string


def test_string_is_trimmed() -> None:
    assert convert("string", "  Priya \n") == "Priya"


@pytest.mark.parametrize(
    ("raw", "expected"), [(7, "7"), (7.5, "7.5"), (True, "true"), (False, "false")]
)
def test_string_stringifies_other_scalars(raw: Any, expected: str) -> None:
    assert convert("string", raw) == expected


def test_string_of_255_characters_is_kept_whole() -> None:
    assert convert("string", "x" * 255) == "x" * 255


def test_string_over_255_characters_is_a_problem_not_truncated() -> None:
    assert problem_code("string", "x" * 256) == "too_long"


def test_string_length_counts_after_trimming() -> None:
    assert convert("string", "  " + "x" * 255 + "  ") == "x" * 255


@pytest.mark.parametrize("raw", [{"a": 1}, ["a", "b"]])
def test_string_refuses_lists_and_objects(raw: Any) -> None:
    assert problem_code("string", raw) == "not_scalar"


# --------------------------------------------------------------------------------------------
# number


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("7", 7),
        (" 7 ", 7),
        ("-3", -3),
        ("+3", 3),
        ("007", 7),
        ("7.5", 7.5),
        ("7.0", 7.0),
        (".5", 0.5),
        ("1e3", 1000.0),
        (7, 7),
        (7.25, 7.25),
        ("9223372036854775807", 9223372036854775807),
        ("-9223372036854775808", -9223372036854775808),
    ],
)
def test_number_accepts_numeric_text_and_json_numbers(raw: Any, expected: int | float) -> None:
    assert exact(convert("number", raw)) == exact(expected)


@pytest.mark.parametrize(
    "raw",
    [
        "seven",
        "nan",
        "NaN",
        "inf",
        "-Infinity",
        "1,000",
        "1 000",
        "0x10",
        "7.5.1",
        "٣",
        True,
        False,
        float("nan"),
        {"n": 1},
    ],
)
def test_number_refuses_non_numbers_and_booleans(raw: Any) -> None:
    assert problem_code("number", raw) == "invalid_number"


@pytest.mark.parametrize(
    "raw", ["9223372036854775808", "9" * 5000, 2**63, "1e400", float("inf"), float("-inf")]
)
def test_number_refuses_values_braze_cannot_store(raw: Any) -> None:
    assert problem_code("number", raw) == "number_out_of_range"


# --------------------------------------------------------------------------------------------
# boolean


@pytest.mark.parametrize("raw", ["true", "TRUE", "1", "yes", "Yes", "on", " On ", True, 1])
def test_boolean_true_words(raw: Any) -> None:
    assert convert("boolean", raw) is True


@pytest.mark.parametrize("raw", ["false", "False", "0", "no", "NO", "off", "", "  ", False, 0])
def test_boolean_false_words_and_empty(raw: Any) -> None:
    assert convert("boolean", raw) is False


@pytest.mark.parametrize("raw", ["maybe", "y", "2", 2, 1.0, ["true"]])
def test_boolean_refuses_other_values(raw: Any) -> None:
    assert problem_code("boolean", raw) == "invalid_boolean"


def test_boolean_null_sends_nothing() -> None:
    assert convert("boolean", None) is ABSENT


# --------------------------------------------------------------------------------------------
# date


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1988-07-02", "1988-07-02"),
        ("1988/07/02", "1988-07-02"),
        (" 1988-07-02 ", "1988-07-02"),
        ("1988-07-02T23:30:00+10:00", "1988-07-02"),
        ("1988-07-02T10:00:00Z", "1988-07-02"),
    ],
)
def test_dob_is_the_calendar_date_as_written(raw: str, expected: str) -> None:
    assert convert("date", raw, attribute="dob") == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-03-14", "2026-03-14"),
        ("2026/03/14", "2026-03-14"),
        ("2026-03-14T09:26:53Z", "2026-03-14T09:26:53Z"),
        ("2026-03-14T09:26:53.589Z", "2026-03-14T09:26:53.589Z"),
        ("2026-03-14T09:26:53.5Z", "2026-03-14T09:26:53.500Z"),
        ("2026-03-14T09:26:53.000Z", "2026-03-14T09:26:53Z"),
        ("2026-03-14T19:26:53+10:00", "2026-03-14T09:26:53Z"),
        ("2026-03-14T19:26:53+1000", "2026-03-14T09:26:53Z"),
        ("2026-03-14T01:00:00-05:30", "2026-03-14T06:30:00Z"),
        ("2026-03-14T05:00:00+10:00", "2026-03-13T19:00:00Z"),
        ("2026-03-14 09:26:53", "2026-03-14T09:26:53Z"),
        ("2026-03-14T09:26", "2026-03-14T09:26:00Z"),
        ("2026-03-14t09:26:53z", "2026-03-14T09:26:53Z"),
        ("0001-01-01", "0001-01-01"),
        ("3000-12-31T23:59:59Z", "3000-12-31T23:59:59Z"),
    ],
)
def test_other_dates_are_iso_8601_in_utc(raw: str, expected: str) -> None:
    assert convert("date", raw, attribute="last_game_at") == expected


@pytest.mark.parametrize("raw", ["01/02/2000", "1/2/2000", "13/02/2000", "01-02-2000", "01.02.00"])
def test_day_month_dates_are_refused_as_ambiguous(raw: str) -> None:
    assert problem_code("date", raw) == "ambiguous_date"


@pytest.mark.parametrize(
    "raw",
    [
        "2023-02-30",
        "2023-13-01",
        "2023-00-10",
        "2023-02-29",
        "2026-03-14T24:00:00Z",
        "2026-03-14T09:60:00Z",
        "2026-03-14T09:26:53+24:00",
        "2026-03-14T09:26:53+10:75",
        "2026-03/14",
        "20260314",
        "2026-W11-6",
        "14 March 2026",
        "yesterday",
        20260314,
        True,
    ],
)
def test_impossible_or_unknown_dates_are_problems(raw: Any) -> None:
    assert problem_code("date", raw) == "invalid_date"


@pytest.mark.parametrize(
    "raw",
    [
        "0000-01-01",
        "3001-01-01",
        "9999-12-31",
        "3000-12-31T23:30:00-01:00",
        "0001-01-01T00:00:00+01:00",
    ],
)
def test_dates_outside_years_1_to_3000_are_problems(raw: str) -> None:
    assert problem_code("date", raw) == "date_out_of_range"


# --------------------------------------------------------------------------------------------
# phone


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("0412 555 019", "AU", "+61412555019"),
        ("0412555019", "au", "+61412555019"),
        ("+61 412 555 019", "", "+61412555019"),
        ("+61 412 555 019", "NZ", "+61412555019"),
        ("(03) 9555 0123", "AU", "+61395550123"),
        ("+1 650-253-0000", "AU", "+16502530000"),
        ("021 555 0199", "NZ", "+64215550199"),
    ],
)
def test_phone_becomes_e164_using_the_hub_region(raw: str, region: str, expected: str) -> None:
    assert convert("phone", raw, region=region) == expected


@pytest.mark.parametrize("raw", ["12345", "0412 555", "not a number", "+61 412", "x" * 300, 5.5])
def test_invalid_phone_numbers_are_problems(raw: Any) -> None:
    assert problem_code("phone", raw, region="AU") == "invalid_phone"


def test_local_phone_without_a_region_is_a_problem() -> None:
    assert problem_code("phone", "0412 555 019", region="") == "invalid_phone"


# --------------------------------------------------------------------------------------------
# email


def test_email_is_trimmed_and_lower_cased() -> None:
    assert convert("email", "  Priya.Natarajan@Example.COM ") == "priya.natarajan@example.com"


@pytest.mark.parametrize(
    "raw",
    [
        "priya",
        "priya@example",
        "priya@localhost",
        "pri ya@example.com",
        '"pri ya"@example.com',
        "priya@@example.com",
        "a@b@example.com",
        "@example.com",
        "priya@",
        "priya@.com",
        "x" * 250 + "@example.com",
        42,
    ],
)
def test_invalid_email_addresses_are_problems(raw: Any) -> None:
    assert problem_code("email", raw) == "invalid_email"


# --------------------------------------------------------------------------------------------
# country


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("AU", "AU"),
        ("au", "AU"),
        ("AUS", "AU"),
        ("nzl", "NZ"),
        ("Australia", "AU"),
        ("  new   zealand ", "NZ"),
        ("United States of America", "US"),
        ("USA", "US"),
        ("U.S.A.", "US"),
        ("UK", "GB"),
        ("Great Britain", "GB"),
        ("England", "GB"),
        ("United Kingdom", "GB"),
        ("The Netherlands", "NL"),
        ("South Korea", "KR"),
        ("Korea, South", "KR"),
        ("Viet Nam", "VN"),
        ("Vietnam", "VN"),
        ("Bolivia, Plurinational State of", "BO"),
        ("Plurinational State of Bolivia", "BO"),
        ("Cote d'Ivoire", "CI"),
        ("Türkiye", "TR"),
        ("Turkey", "TR"),
        ("Russia", "RU"),
    ],
)
def test_country_becomes_alpha_2(raw: str, expected: str) -> None:
    assert convert("country", raw) == expected


@pytest.mark.parametrize("raw", ["Narnia", "XX", "ZZZ", "Europe", 36])
def test_unknown_countries_are_problems(raw: Any) -> None:
    assert problem_code("country", raw) == "unknown_country"


# --------------------------------------------------------------------------------------------
# gender


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("m", "M"),
        ("Male", "M"),
        ("MAN", "M"),
        ("f", "F"),
        ("female", "F"),
        ("Woman", "F"),
        ("o", "O"),
        ("Other", "O"),
        ("non-binary", "O"),
        ("Nonbinary", "O"),
        ("non_binary", "O"),
        ("n", "N"),
        ("Not applicable", "N"),
        ("N/A", "N"),
        ("p", "P"),
        ("Prefer not to say", "P"),
        ("prefer_not_to_say", "P"),
        ("  prefer  not to   say ", "P"),
    ],
)
def test_gender_becomes_a_braze_code(raw: str, expected: str) -> None:
    assert convert("gender", raw) == expected


def test_unknown_gender_sends_nothing_rather_than_erasing() -> None:
    assert convert("gender", "Unknown") is ABSENT


@pytest.mark.parametrize("raw", ["robot", "x", "mf", 1])
def test_other_gender_values_are_problems(raw: Any) -> None:
    assert problem_code("gender", raw) == "unknown_gender"


# --------------------------------------------------------------------------------------------
# subscription


@pytest.mark.parametrize(
    "raw", ["true", "TRUE", "yes", "1", "on", "opted_in", "Opted In", "subscribed", True, 1]
)
def test_ticked_subscription_is_opted_in(raw: Any) -> None:
    assert convert("subscription", raw) == "opted_in"


@pytest.mark.parametrize("raw", ["false", "No", "0", "off", "", "  ", False, 0])
def test_unticked_subscription_sends_nothing(raw: Any) -> None:
    assert convert("subscription", raw) is ABSENT


@pytest.mark.parametrize("on_false", ["unsubscribed", "subscribed"])
@pytest.mark.parametrize("raw", ["false", "no", "0", "off", ""])
def test_unticked_subscription_sends_on_false_when_configured(raw: str, on_false: str) -> None:
    assert convert("subscription", raw, on_false=on_false) == on_false


@pytest.mark.parametrize("on_false", [None, "subscribed"])
def test_explicit_unsubscribed_is_unsubscribed(on_false: str | None) -> None:
    assert convert("subscription", " Unsubscribed ", on_false=on_false) == "unsubscribed"


def test_ticked_subscription_ignores_on_false() -> None:
    assert convert("subscription", "yes", on_false="unsubscribed") == "opted_in"


def test_missing_subscription_sends_nothing_even_with_on_false() -> None:
    assert convert("subscription", None, on_false="unsubscribed") is ABSENT


@pytest.mark.parametrize("raw", ["maybe", "2", "opted", ["true"]])
def test_other_subscription_answers_are_problems(raw: Any) -> None:
    assert problem_code("subscription", raw) == "invalid_subscription"


# --------------------------------------------------------------------------------------------
# array


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Footy, Cricket , Netball", ["Footy", "Cricket", "Netball"]),
        ("Footy,,Footy, ,Cricket", ["Footy", "Cricket"]),
        ("Footy", ["Footy"]),
        (["Tigers", " Bombers ", "Tigers", "", None], ["Tigers", "Bombers"]),
        ([3, 1, 3, True], ["3", "1", "true"]),
        (7, ["7"]),
        ("b,a,B,a", ["b", "a", "B"]),
    ],
)
def test_array_is_trimmed_deduplicated_and_ordered(raw: Any, expected: list[str]) -> None:
    assert convert("array", raw) == expected


@pytest.mark.parametrize("raw", [",", " , ,", ["", "  ", None]])
def test_array_without_items_sends_nothing(raw: Any) -> None:
    assert convert("array", raw) is ABSENT


def test_array_of_100_items_is_kept() -> None:
    items = [f"tag{i}" for i in range(100)]
    assert convert("array", ",".join(items)) == items


def test_array_over_100_items_is_a_problem() -> None:
    assert problem_code("array", [f"tag{i}" for i in range(101)]) == "too_many_items"


def test_array_duplicates_do_not_count_towards_the_limit() -> None:
    assert convert("array", ["same"] * 500) == ["same"]


def test_array_item_over_255_characters_is_a_problem() -> None:
    assert problem_code("array", ["ok", "x" * 256]) == "too_long"


@pytest.mark.parametrize("raw", [[["nested"]], [{"a": 1}], {"a": 1}])
def test_array_refuses_nested_values(raw: Any) -> None:
    assert problem_code("array", raw) == "not_scalar"


# --------------------------------------------------------------------------------------------
# on_error: skip and hold


def test_skip_drops_the_field_and_delivers_the_rest() -> None:
    # given
    spec = spec_with(
        FieldMappingSpec(field="first_name", attribute="first_name"),
        FieldMappingSpec(field="mobile", attribute="phone", type="phone", on_error="skip"),
    )

    # when
    result = map_submission(spec, {"member_number": "M1", "first_name": "Priya", "mobile": "1"})

    # then
    assert result.attributes == {
        "external_id": "M1",
        "_update_existing_only": False,
        "first_name": "Priya",
    }
    assert [(p.field, p.attribute, p.code, p.held) for p in result.problems] == [
        ("mobile", "phone", "invalid_phone", False)
    ]
    assert result.deliverable
    assert result.hold_reason == ""


def test_hold_keeps_the_whole_submission_back_and_says_why() -> None:
    # given
    spec = spec_with(
        FieldMappingSpec(field="first_name", attribute="first_name"),
        FieldMappingSpec(field="mobile", attribute="phone", type="phone", on_error="hold"),
    )

    # when
    result = map_submission(spec, {"member_number": "M1", "first_name": "Priya", "mobile": "1"})

    # then
    assert result.attributes is None
    assert not result.deliverable
    assert [(p.field, p.code, p.held) for p in result.problems] == [
        ("mobile", "invalid_phone", True)
    ]
    assert "mobile" in result.hold_reason
    assert result.identity_value == "M1"


def test_hold_reason_joins_only_held_problems() -> None:
    spec = spec_with(
        FieldMappingSpec(field="a", attribute="a", type="number", on_error="hold"),
        FieldMappingSpec(field="b", attribute="b", type="number", on_error="skip"),
        FieldMappingSpec(field="c", attribute="c", type="email", on_error="hold"),
    )

    result = map_submission(spec, {"member_number": "M1", "a": "x", "b": "y", "c": "z"})

    assert result.hold_reason == "; ".join(
        str(p.message) for p in result.problems if p.field in {"a", "c"}
    )
    assert "“a”" in result.hold_reason and "“c”" in result.hold_reason
    assert "“b”" not in result.hold_reason


def test_problem_messages_are_translatable_and_never_contain_the_value() -> None:
    spec = spec_with(FieldMappingSpec(field="mobile", attribute="phone", type="phone"))

    result = map_submission(spec, {"member_number": "M1", "mobile": "0499 999"})

    message = result.problems[0].message
    assert isinstance(message, Promise)
    assert "0499" not in str(message)
    assert "“mobile”" in str(message)


# --------------------------------------------------------------------------------------------
# identity


@pytest.mark.parametrize(
    ("identity", "raw", "expected_keys", "expected_value"),
    [
        (
            IdentitySpec("external_id", "uid"),
            " M-1 ",
            {"external_id": "M-1"},
            "M-1",
        ),
        (IdentitySpec("external_id", "uid"), 1234, {"external_id": "1234"}, "1234"),
        (IdentitySpec("braze_id", "uid"), "65f1c0ffee", {"braze_id": "65f1c0ffee"}, "65f1c0ffee"),
        (
            IdentitySpec("alias_email", "uid", alias_label="email"),
            " Priya@Example.com",
            {"user_alias": {"alias_name": "priya@example.com", "alias_label": "email"}},
            "priya@example.com",
        ),
        (
            IdentitySpec("alias_phone", "uid", alias_label="mobile"),
            "0412 555 019",
            {"user_alias": {"alias_name": "+61412555019", "alias_label": "mobile"}},
            "+61412555019",
        ),
        (IdentitySpec("email", "uid"), "Priya@Example.com", {"email": "priya@example.com"}, None),
        (IdentitySpec("phone", "uid"), "0412 555 019", {"phone": "+61412555019"}, None),
    ],
)
def test_each_identity_type_writes_its_identifier(
    identity: IdentitySpec,
    raw: Any,
    expected_keys: dict[str, Any],
    expected_value: str | None,
) -> None:
    result = map_submission(spec_with(identity=identity), {"uid": raw})

    assert result.attributes is not None
    assert {k: v for k, v in result.attributes.items() if k != "_update_existing_only"} == (
        expected_keys
    )
    assert result.identity_value == (expected_value or next(iter(expected_keys.values())))


@pytest.mark.parametrize(
    "identity_type", ["external_id", "alias_email", "alias_phone", "email", "phone"]
)
@pytest.mark.parametrize("create", [True, False])
def test_update_existing_only_follows_create_missing_users(
    identity_type: str, create: bool
) -> None:
    identity = IdentitySpec(identity_type, "uid", alias_label="label")
    raw = "0412 555 019" if "phone" in identity_type else "priya@example.com"
    spec = spec_with(identity=identity, create_missing_users=create)

    result = map_submission(spec, {"uid": raw})

    assert result.attributes is not None
    assert result.attributes["_update_existing_only"] is (not create)


@pytest.mark.parametrize("create", [True, False])
def test_braze_id_is_always_update_only(create: bool) -> None:
    spec = spec_with(identity=IdentitySpec("braze_id", "uid"), create_missing_users=create)

    result = map_submission(spec, {"uid": "65f1c0ffee"})

    assert result.attributes is not None
    assert result.attributes["_update_existing_only"] is True


@pytest.mark.parametrize("payload", [{}, {"uid": None}, {"uid": ""}, {"uid": "  "}])
@pytest.mark.parametrize(
    "identity_type", ["external_id", "braze_id", "alias_email", "alias_phone", "email", "phone"]
)
def test_missing_identity_holds(identity_type: str, payload: dict[str, Any]) -> None:
    spec = spec_with(identity=IdentitySpec(identity_type, "uid", alias_label="label"))

    result = map_submission(spec, payload)

    assert result.attributes is None
    assert [(p.field, p.attribute, p.code, p.held) for p in result.problems] == [
        ("uid", "", "missing_identity", True)
    ]
    assert "“uid”" in result.hold_reason
    assert result.identity_value == ""


@pytest.mark.parametrize(
    ("identity_type", "raw"),
    [
        ("external_id", "x" * 256),
        ("external_id", {"id": 1}),
        ("braze_id", ["a"]),
        ("alias_email", "not-an-email"),
        ("email", "priya@localhost"),
        ("alias_phone", "12345"),
        ("phone", "call me"),
    ],
)
def test_invalid_identity_holds(identity_type: str, raw: Any) -> None:
    spec = spec_with(identity=IdentitySpec(identity_type, "uid", alias_label="label"))

    result = map_submission(spec, {"uid": raw, "first_name": "Priya"})

    assert result.attributes is None
    assert [(p.field, p.code, p.held) for p in result.problems] == [
        ("uid", "invalid_identity", True)
    ]
    assert "“uid”" in result.hold_reason


def test_identity_problem_and_value_problems_are_all_reported() -> None:
    spec = spec_with(FieldMappingSpec(field="n", attribute="n", type="number"))

    result = map_submission(spec, {"n": "x"})

    assert {(p.field, p.code, p.held) for p in result.problems} == {
        ("member_number", "missing_identity", True),
        ("n", "invalid_number", False),
    }


@pytest.mark.parametrize("identity_type", ["external_id", "braze_id", "alias_email"])
def test_email_and_phone_are_ordinary_attributes_beside_other_identifiers(
    identity_type: str,
) -> None:
    spec = spec_with(
        FieldMappingSpec(field="email", attribute="email", type="email"),
        FieldMappingSpec(field="mobile", attribute="phone", type="phone"),
        identity=IdentitySpec(identity_type, "email", alias_label="email"),
    )

    result = map_submission(spec, {"email": "Priya@Example.com", "mobile": "0412 555 019"})

    assert result.attributes is not None
    assert result.attributes["email"] == "priya@example.com"
    assert result.attributes["phone"] == "+61412555019"


@pytest.mark.parametrize(
    ("identity_type", "attribute", "mapped_raw", "identifier"),
    [
        ("email", "email", "other@example.com", "priya@example.com"),
        ("phone", "phone", "+16502530000", "+61412555019"),
    ],
)
def test_the_identifier_wins_over_a_mapping_to_the_same_key(
    identity_type: str, attribute: str, mapped_raw: str, identifier: str
) -> None:
    # given: identity email/phone read from "uid" and a mapping from "other" to the same key
    spec = spec_with(
        FieldMappingSpec(field="other", attribute=attribute, type=attribute),
        identity=IdentitySpec(identity_type, "uid"),
    )
    uid = "Priya@example.com" if identity_type == "email" else "0412 555 019"

    # when
    result = map_submission(spec, {"uid": uid, "other": mapped_raw})

    # then
    assert result.attributes == {attribute: identifier, "_update_existing_only": False}


@pytest.mark.parametrize("attribute", ["external_id", "braze_id", "user_alias"])
def test_mappings_never_overwrite_identifier_keys(attribute: str) -> None:
    spec = spec_with(FieldMappingSpec(field="other", attribute=attribute))

    result = map_submission(spec, {"member_number": "M1", "other": "hijack"})

    assert result.attributes == {"external_id": "M1", "_update_existing_only": False}


def test_mapping_to_update_existing_only_cannot_change_it() -> None:
    spec = spec_with(
        FieldMappingSpec(field="other", attribute="_update_existing_only", type="boolean")
    )

    result = map_submission(spec, {"member_number": "M1", "other": "true"})

    assert result.attributes == {"external_id": "M1", "_update_existing_only": False}


# --------------------------------------------------------------------------------------------
# Whole submission


def test_only_mapped_keys_reach_braze() -> None:
    spec = spec_with(FieldMappingSpec(field="first_name", attribute="first_name"))
    payload = {
        "id": "0b7d2f4e",
        "event": "CompetitionEntrySuccess",
        "timestamp": "2026-03-14T09:26:53.589Z",
        "member_number": "M1",
        "first_name": "Priya",
        "last_name": "Natarajan",
        "email": "priya@example.com",
    }

    result = map_submission(spec, payload)

    assert result.attributes == {
        "external_id": "M1",
        "_update_existing_only": False,
        "first_name": "Priya",
    }


def test_attributes_follow_mapping_order_not_payload_order() -> None:
    spec = spec_with(
        FieldMappingSpec(field="b", attribute="zeta"),
        FieldMappingSpec(field="a", attribute="alpha"),
    )
    forward = {"member_number": "M1", "a": "1", "b": "2"}
    backward = dict(reversed(list(forward.items())))

    first, second = map_submission(spec, forward), map_submission(spec, backward)

    assert first == second
    assert list(first.attributes or {}) == ["external_id", "_update_existing_only", "zeta", "alpha"]


def test_one_field_may_feed_several_attributes() -> None:
    spec = spec_with(
        FieldMappingSpec(field="score", attribute="quiz_score", type="number"),
        FieldMappingSpec(field="score", attribute="quiz_score_text"),
    )

    result = map_submission(spec, {"member_number": "M1", "score": "7"})

    assert result.attributes is not None
    assert exact(result.attributes["quiz_score"]) == "7"
    assert result.attributes["quiz_score_text"] == "7"


def test_a_kind_without_a_default_or_rule_lands_as_attributes_only() -> None:
    result = map_submission(spec_with(), {"member_number": "M1", "event": "SomethingNew"})

    assert result.events == []
    assert result.attributes == {"external_id": "M1", "_update_existing_only": False}


def test_result_is_json_serialisable() -> None:
    spec = spec_with(
        FieldMappingSpec(field="d", attribute="d", type="date"),
        FieldMappingSpec(field="t", attribute="t", type="array"),
        FieldMappingSpec(field="n", attribute="n", type="number"),
    )
    result = map_submission(spec, {"member_number": "M1", "d": "2026-03-14", "t": "a,b", "n": "1"})

    assert json.loads(json.dumps({"attributes": result.attributes, "events": result.events}))


def test_problem_and_result_are_immutable_values() -> None:
    problem = Problem(field="f", attribute="a", code="c", message="m", held=False)
    result = MappingResult(attributes=None, events=[], problems=[problem], identity_value="")

    with pytest.raises(AttributeError):
        problem.code = "other"  # type: ignore[misc]
    assert result.hold_reason == ""
    assert not result.deliverable


@pytest.mark.parametrize(
    "spec",
    [
        HubSpec(identity=IdentitySpec("username", "uid")),
        HubSpec(identity=IdentitySpec("alias_email", "uid", alias_label="")),
        HubSpec(identity=MEMBER, mappings=(FieldMappingSpec("f", "a", type="text"),)),
        HubSpec(identity=MEMBER, mappings=(FieldMappingSpec("f", "a", on_error="retry"),)),
    ],
)
def test_a_spec_validation_would_refuse_is_a_programming_error(spec: HubSpec) -> None:
    with pytest.raises(ValueError):
        map_submission(spec, {"uid": "x", "member_number": "M1", "f": "v"})


# --------------------------------------------------------------------------------------------
# Event kinds: rules, events, attribute updates, engagement, transactional emails


ENTRY = {
    "id": "0b7d2f4e",
    "event": "CompetitionEntrySuccess",
    "timestamp": "2026-03-14T09:26:53.589Z",
    "site_name": "Autumn Footy Tipping",
    "card_id": "card-1",
    "card_name": "Round 1",
    "card_type": "Quiz",
    "score": "7",
    "member_number": "M1",
    "email": "priya@example.com",
    "first_name": "Priya",
}


def hub(**changes: Any) -> HubSpec:
    config: dict[str, Any] = {
        "identity": {"type": "external_id", "field": "member_number"},
        "events": ["CompetitionEntrySuccess", "PrizeAwarded", "QuizStarted"],
        "mappings": [{"field": "first_name", "attribute": "first_name"}],
        **changes,
    }
    return hub_spec_from_config(config)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-03-14T09:26:53.589Z", "2026-03-14T09:26:53.589Z"),
        ("2026-03-14T09:26:53Z", "2026-03-14T09:26:53.000Z"),
        ("2026-03-14T19:26:53.5+10:00", "2026-03-14T09:26:53.500Z"),
        ("2026-03-14 09:26", "2026-03-14T09:26:00.000Z"),
    ],
)
def test_event_time_is_utc_with_milliseconds(raw: str, expected: str) -> None:
    assert to_utc_time(raw) == expected


@pytest.mark.parametrize("raw", ["2026-03-14", "yesterday", "", None, 1710408413])
def test_event_time_needs_a_date_and_a_time(raw: Any) -> None:
    with pytest.raises(ValueProblem) as caught:
        to_utc_time(raw)
    assert caught.value.code == "invalid_time"


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("CompetitionEntrySuccess", "komo_competition_entry"),
        ("CouponRedeemed", "komo_coupon_redeemed"),
        ("InstantWinFinished", "komo_instant_win_finished"),
        ("HTMLCardShown", "komo_html_card_shown"),
        ("card-answered", "komo_card_answered"),
        ("", "komo_event"),
    ],
)
def test_every_kind_has_an_event_name(kind: str, name: str) -> None:
    assert default_event_name(kind) == name


def test_card_types_match_ignoring_case_spaces_and_separators() -> None:
    assert card_type_key("Personality Test") == card_type_key("personality_test")
    assert card_type_key("Poll") != card_type_key("Quiz")


def test_a_rule_fills_in_the_default_and_a_card_type_fills_in_the_rule() -> None:
    spec = hub(
        event_rules={
            "QuizStarted": {
                "event_name": "quiz_started",
                "card_types": {"Poll": {"landing": "event", "properties": ["card_name"]}},
            }
        }
    )

    quiz = resolve_event_rule(spec, event="QuizStarted", card_type="Quiz")
    poll = resolve_event_rule(spec, event="QuizStarted", card_type="poll")

    assert (quiz.landing, quiz.event_name) == ("both", "quiz_started")
    assert [p.property for p in quiz.properties][-2:] == ["score", "correct"]
    assert (poll.landing, poll.event_name) == ("event", "quiz_started")
    assert [p.property for p in poll.properties] == ["card_name"]


def test_an_event_only_landing_sends_no_attributes_for_an_external_id() -> None:
    spec = hub(event_rules={"CompetitionEntrySuccess": {"landing": "event"}})

    result = map_submission(spec, ENTRY)

    assert result.attributes is None
    assert result.deliverable
    assert [event["name"] for event in result.events] == ["komo_competition_entry"]
    assert result.events[0]["external_id"] == "M1"


@pytest.mark.parametrize(("create", "attributes"), [(True, 1), (False, 0)])
def test_an_alias_gets_an_identifier_object_only_when_braze_must_create_it(
    create: bool, attributes: int
) -> None:
    spec = hub(
        identity={"type": "alias_email", "field": "email", "alias_label": "email"},
        create_missing_users=create,
        event_rules={"CompetitionEntrySuccess": {"landing": "event"}},
    )

    result = map_submission(spec, ENTRY)

    assert len([result.attributes] if result.attributes else []) == attributes
    assert result.events[0]["_update_existing_only"] is (not create)


@pytest.mark.parametrize(
    ("raw", "sent"),
    [("7", {"inc": 7}), ("-2", {"inc": -2}), ("1.5", {"inc": 1.5}), ("0", None), ("", None)],
)
def test_a_running_total_adds_the_number_and_skips_nothing_to_add(raw: str, sent: Any) -> None:
    spec = hub(
        event_rules={
            "CompetitionEntrySuccess": {
                "attributes": [{"attribute": "total", "mode": "inc", "field": "score"}]
            }
        }
    )

    result = map_submission(spec, {**ENTRY, "score": raw})

    assert result.attributes is not None
    assert exact(result.attributes.get("total")) == exact(sent)


def test_a_running_total_of_text_is_a_skipped_problem() -> None:
    spec = hub(
        event_rules={
            "CompetitionEntrySuccess": {
                "attributes": [{"attribute": "total", "mode": "inc", "field": "points"}]
            }
        }
    )

    result = map_submission(spec, {**ENTRY, "points": "lots"})

    assert result.deliverable
    assert "total" not in (result.attributes or {})
    assert [(p.field, p.attribute, p.code, p.held) for p in result.problems] == [
        ("points", "total", "invalid_number", False)
    ]


def test_collected_answers_add_each_answer_and_refuse_more_than_braze_keeps() -> None:
    spec = hub(
        event_rules={
            "CompetitionEntrySuccess": {
                "attributes": [{"attribute": "teams", "mode": "add", "field": "teams"}]
            }
        }
    )

    several = map_submission(spec, {**ENTRY, "teams": "Tigers, Swans,Tigers"})
    too_many = map_submission(spec, {**ENTRY, "teams": ",".join(f"t{n}" for n in range(101))})

    assert several.attributes is not None
    assert several.attributes["teams"] == {"add": ["Tigers", "Swans"]}
    assert [p.code for p in too_many.problems] == ["too_many_items"]


def test_a_card_object_needs_a_card_id_braze_can_use_as_a_key() -> None:
    spec = hub(
        event_rules={
            "CompetitionEntrySuccess": {"attributes": [{"attribute": "cards", "mode": "object"}]}
        }
    )

    no_card = map_submission(spec, {**ENTRY, "card_id": ""})
    dotted = map_submission(spec, {**ENTRY, "card_id": "card.1"})

    assert no_card.attributes is not None
    assert "cards" not in no_card.attributes and "_merge_objects" not in no_card.attributes
    assert no_card.problems == []
    assert [(p.field, p.code) for p in dotted.problems] == [("card_id", "invalid_card_id")]


@pytest.mark.parametrize(
    ("raw", "on_false", "state"),
    [
        ("true", None, "subscribed"),
        ("subscribed", None, "subscribed"),
        ("unsubscribed", None, "unsubscribed"),
        ("false", "unsubscribed", "unsubscribed"),
        ("false", "subscribed", "subscribed"),
        ("false", None, None),
    ],
)
def test_a_consent_field_sets_its_subscription_group(
    raw: str, on_false: str | None, state: str | None
) -> None:
    spec = spec_with(
        FieldMappingSpec(
            field="optin",
            attribute="email_subscribe",
            type="subscription",
            on_false=on_false,
            subscription_group_id="g1",
        )
    )

    result = map_submission(spec, {"member_number": "M1", "optin": raw})

    assert result.attributes is not None
    expected = [{"subscription_group_id": "g1", "subscription_state": state}] if state else None
    assert result.attributes.get("subscription_groups") == expected


ENGAGEMENT = {
    "hubs_engaged": "hubs",
    "first_engaged_at": "first_at",
    "last_engaged_at": "last_at",
    "entries": "entries",
    "prizes_won": "prizes",
}


@pytest.mark.parametrize(
    ("event", "first", "expected"),
    [
        (
            "CompetitionEntrySuccess",
            False,
            {
                "hubs": {"add": ["Autumn Footy Tipping"]},
                "last_at": ENTRY["timestamp"],
                "entries": {"inc": 1},
            },
        ),
        (
            "PrizeAwarded",
            True,
            {
                "hubs": {"add": ["Autumn Footy Tipping"]},
                "first_at": ENTRY["timestamp"],
                "last_at": ENTRY["timestamp"],
                "prizes": {"add": ["First Prize"]},
            },
        ),
    ],
)
def test_engagement_attributes_follow_the_moment(event: str, first: bool, expected: dict) -> None:
    spec = hub(engagement_attributes=ENGAGEMENT, mappings=[])
    payload = {**ENTRY, "event": event, "prize_name": "First Prize"}

    result = map_submission(spec, payload, context=MappingContext(first_engagement=first))

    assert result.attributes == {"external_id": "M1", "_update_existing_only": False, **expected}


def test_engagement_falls_back_to_the_site_id_and_skips_a_missing_prize_name() -> None:
    spec = hub(engagement_attributes=ENGAGEMENT, mappings=[])
    payload = {**ENTRY, "event": "PrizeAwarded", "site_name": "", "site_id": "site-1"}

    result = map_submission(spec, payload)

    assert result.attributes is not None
    assert result.attributes["hubs"] == {"add": ["site-1"]}
    assert "prizes" not in result.attributes


def test_no_transactional_request_without_a_campaign_for_the_moment() -> None:
    spec = hub(transactional={"PrizeAwarded": {"campaign_id": "c1"}})

    assert transactional_request(spec, ENTRY, external_send_id="s1") is None


def test_a_held_submission_sends_no_transactional_email() -> None:
    spec = hub(transactional={"CompetitionEntrySuccess": {"campaign_id": "c1"}})

    request = transactional_request(spec, {**ENTRY, "member_number": ""}, external_send_id="s1")

    assert request is not None
    assert request.body is None
    assert "member_number" in request.problem


def test_a_hub_that_creates_nobody_sends_no_recipient_attributes() -> None:
    spec = hub(
        create_missing_users=False,
        mappings=[{"field": "email", "attribute": "email", "type": "email"}],
        transactional={"CompetitionEntrySuccess": {"campaign_id": "c1", "trigger_properties": []}},
    )

    request = transactional_request(spec, ENTRY, external_send_id="s1")

    assert request is not None
    assert request.body == {"external_send_id": "s1", "recipient": {"external_user_id": "M1"}}


def test_an_external_send_id_braze_would_refuse_is_a_programming_error() -> None:
    spec = hub(transactional={"CompetitionEntrySuccess": {"campaign_id": "c1"}})

    with pytest.raises(ValueError):
        transactional_request(spec, ENTRY, external_send_id="not allowed!")


def test_a_card_object_field_that_cannot_be_converted_is_left_out_with_a_problem() -> None:
    spec = hub(
        event_rules={
            "CompetitionEntrySuccess": {
                "landing": "attributes",
                "attributes": [{"attribute": "cards", "mode": "object", "fields": ["score"]}],
            }
        }
    )

    result = map_submission(spec, {**ENTRY, "score": "lots"})

    assert result.attributes is not None
    assert result.attributes["cards"] == {"card-1": {"updated_at": {"$time": ENTRY["timestamp"]}}}
    assert [(p.field, p.attribute, p.code) for p in result.problems] == [
        ("score", "cards.score", "invalid_number")
    ]

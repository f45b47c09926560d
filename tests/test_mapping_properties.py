"""Property tests: whatever Komo sends, the mapper answers with a well-formed result."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from integrations.mapping import ABSENT, MappingResult, ValueProblem, convert_value, map_submission
from integrations.spec import (
    IDENTITY_TYPES,
    ON_ERROR_CHOICES,
    VALUE_TYPES,
    FieldMappingSpec,
    HubSpec,
    IdentitySpec,
)

KOMO_KEYS = ["email", "mobile", "first_name", "optin", "birthday", "score", "tags", "uid", "id"]
ATTRIBUTES = ["first_name", "email", "phone", "dob", "country", "gender", "email_subscribe"]
# Values that reach deep into each type's rules, mixed with arbitrary text below.
INTERESTING_VALUES = [
    "",
    "  ",
    "true",
    "FALSE",
    "yes",
    "0",
    "1",
    "7",
    "-7.5",
    "1e400",
    "nan",
    "9" * 30,
    "0412 555 019",
    "+61412555019",
    "Priya@Example.com",
    "priya@localhost",
    "1988-07-02",
    "1988/07/02",
    "01/02/2000",
    "2026-03-14T19:26:53.589+10:00",
    "3001-01-01",
    "Australia",
    "UK",
    "female",
    "unknown",
    "unsubscribed",
    "a, b ,a,,c",
    ",".join(str(i) for i in range(150)),
    "x" * 256,
]
IDENTIFIER_KEYS_BY_TYPE = {
    "external_id": "external_id",
    "braze_id": "braze_id",
    "alias_email": "user_alias",
    "alias_phone": "user_alias",
    "email": "email",
    "phone": "phone",
}

values = st.one_of(st.text(), st.sampled_from(INTERESTING_VALUES))
payloads = st.dictionaries(st.one_of(st.sampled_from(KOMO_KEYS), st.text()), values, max_size=12)
mappings = st.builds(
    FieldMappingSpec,
    field=st.sampled_from(KOMO_KEYS),
    attribute=st.one_of(st.sampled_from(ATTRIBUTES), st.text(min_size=1, max_size=20)),
    type=st.sampled_from(VALUE_TYPES),
    on_error=st.sampled_from(ON_ERROR_CHOICES),
    on_false=st.sampled_from([None, "subscribed", "unsubscribed"]),
)
specs = st.builds(
    HubSpec,
    identity=st.builds(
        IdentitySpec,
        type=st.sampled_from(IDENTITY_TYPES),
        field=st.sampled_from(KOMO_KEYS),
        alias_label=st.just("label"),
    ),
    mappings=st.lists(mappings, max_size=8).map(tuple),
    create_missing_users=st.booleans(),
    default_phone_region=st.sampled_from(["AU", "US", "GB", "au", ""]),
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(),
    st.sampled_from(INTERESTING_VALUES),
)


def strings_in(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in strings_in(item)]
    if isinstance(value, list):
        return [s for item in value for s in strings_in(item)]
    return []


def held(result: MappingResult) -> bool:
    return any(problem.held for problem in result.problems)


@settings(deadline=None)
@given(spec=specs, payload=payloads)
def test_any_flat_payload_gives_a_well_formed_result(spec: HubSpec, payload: dict) -> None:
    result = map_submission(spec, payload)

    json.dumps({"attributes": result.attributes, "events": result.events})
    assert (result.attributes is None) is held(result)
    assert bool(result.hold_reason) is held(result)
    assert result.deliverable is (result.attributes is not None)
    assert all(len(text) <= 255 for text in strings_in(result.attributes))


@settings(deadline=None)
@given(spec=specs, payload=payloads)
def test_only_mapped_attributes_and_identifier_keys_appear(spec: HubSpec, payload: dict) -> None:
    result = map_submission(spec, payload)

    allowed = {mapping.attribute for mapping in spec.mappings} | {
        IDENTIFIER_KEYS_BY_TYPE[spec.identity.type],
        "_update_existing_only",
    }
    assert set(result.attributes or {}) <= allowed


@settings(deadline=None)
@given(spec=specs, payload=payloads, extra=payloads)
def test_unmapped_keys_and_key_order_never_change_the_result(
    spec: HubSpec, payload: dict, extra: dict
) -> None:
    used = {spec.identity.field} | {mapping.field for mapping in spec.mappings}
    noisy = {**{k: v for k, v in extra.items() if k not in used}, **payload}
    reordered = dict(reversed(list(noisy.items())))

    result = map_submission(spec, payload)
    noisy_result = map_submission(spec, reordered)

    assert noisy_result == result
    assert list(noisy_result.attributes or {}) == list(result.attributes or {})


@settings(deadline=None)
@given(value_type=st.sampled_from(VALUE_TYPES), raw=json_scalars)
def test_convert_value_only_ever_raises_value_problem(value_type: str, raw: Any) -> None:
    mapping = FieldMappingSpec(field="f", attribute="custom", type=value_type)
    try:
        value = convert_value(mapping, raw, default_phone_region="AU")
    except ValueProblem as problem:
        assert problem.code
        assert "“f”" in str(problem.sentence("f"))
    else:
        assert value is ABSENT or json.loads(json.dumps(value)) == value

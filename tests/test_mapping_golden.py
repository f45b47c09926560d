"""Golden cases: a hub config and a Komo payload in, exactly these Braze objects out.

Each ``tests/golden/*.json`` holds ``description``, ``hub`` (hub JSON as in docs/hub-config.md),
``payload`` (a flat Komo body) and ``expected`` (``attributes``, ``events``, ``problems`` as
``{field, code, held}``, ``hold``, and for hubs with transactional emails ``transactional``: the
campaign and the send body, with ``external_send_id`` "komo-golden-send-id"). The expectations
are written by hand, never produced by the code under test.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from integrations.mapping import MappingResult, map_submission, transactional_request
from integrations.spec import DOCUMENTED_EVENTS, LANDINGS, hub_spec_from_config, resolve_event_rule
from integrations.validation import validate_hub_spec

GOLDEN_DIR = Path(__file__).parent / "golden"
SEND_ID = "komo-golden-send-id"
GOLDEN_FILES = sorted(GOLDEN_DIR.glob("*.json"))

# Every event kind komo-events.md lists as confirmed (PredictiveStarted is "coming soon").
KOMO_EVENT_KINDS = {
    "CompetitionEntrySuccess",
    "SignUpSuccess",
    "PrizeAwarded",
    "CouponIssued",
    "CardViewed",
    "CardCoverClicked",
    "SiteViewed",
    "QuizStarted",
    "InstantWinStarted",
    "ScratchAndWinStarted",
    "TriviaGameplayStarted",
}


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def run(case: dict[str, Any]) -> MappingResult:
    return map_submission(hub_spec_from_config(case["hub"]), case["payload"])


def canonical(value: Any) -> str:
    # json.dumps tells 7 from 7.0 and true from 1, which == between dicts does not.
    return json.dumps(value, sort_keys=True)


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=[path.name for path in GOLDEN_FILES])
def test_golden_case_maps_to_the_expected_braze_object(path: Path) -> None:
    # given
    case = load(path)
    expected = case["expected"]

    # when
    result = run(case)

    # then
    assert result.attributes == expected["attributes"]
    assert canonical(result.attributes) == canonical(expected["attributes"])
    assert list(result.attributes or {}) == list(expected["attributes"] or {}), "key order"
    assert result.events == expected["events"]
    assert sorted((p.field, p.code, p.held) for p in result.problems) == sorted(
        (p["field"], p["code"], p["held"]) for p in expected["problems"]
    )
    assert (not result.deliverable) is expected["hold"]
    assert bool(result.hold_reason) is expected["hold"]


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=[path.name for path in GOLDEN_FILES])
def test_golden_case_sends_the_expected_transactional_email(path: Path) -> None:
    # given
    case = load(path)
    expected = case["expected"].get("transactional")

    # when
    request = transactional_request(
        hub_spec_from_config(case["hub"]), case["payload"], external_send_id=SEND_ID
    )

    # then
    if expected is None:
        assert request is None
    else:
        assert request is not None
        assert (request.campaign_id, request.problem) == (expected["campaign_id"], "")
        assert canonical(request.body) == canonical(expected["body"])


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=[path.name for path in GOLDEN_FILES])
def test_golden_hub_config_is_valid(path: Path) -> None:
    case = load(path)

    errors = validate_hub_spec(hub_spec_from_config(case["hub"]))

    assert [(error.path, str(error.message)) for error in errors] == []


def test_golden_cases_cover_every_komo_event_kind() -> None:
    kinds = {load(path)["payload"]["event"] for path in GOLDEN_FILES}

    assert KOMO_EVENT_KINDS - kinds == set(), "event kinds without a golden case"


def test_golden_cases_cover_every_identity_and_value_type() -> None:
    hubs = [load(path)["hub"] for path in GOLDEN_FILES]
    identity_types = {hub["identity"]["type"] for hub in hubs}
    value_types = {m.get("type", "string") for hub in hubs for m in hub["mappings"]}

    assert len(GOLDEN_FILES) >= 24
    assert identity_types == {
        "external_id",
        "braze_id",
        "alias_email",
        "alias_phone",
        "email",
        "phone",
    }
    assert value_types == {
        "string",
        "number",
        "boolean",
        "date",
        "phone",
        "email",
        "country",
        "gender",
        "subscription",
        "array",
    }


def landing_of(case: dict[str, Any]) -> tuple[str, str]:
    payload = case["payload"]
    rule = resolve_event_rule(
        hub_spec_from_config(case["hub"]),
        event=payload["event"],
        card_type=payload.get("card_type", ""),
    )
    return payload["event"], rule.landing


def test_golden_cases_cover_every_documented_kind_with_every_landing() -> None:
    covered = {landing_of(load(path)) for path in GOLDEN_FILES}

    missing = {(kind, landing) for kind in DOCUMENTED_EVENTS for landing in LANDINGS} - covered

    assert missing == set()


def test_golden_cases_include_an_event_kind_komo_does_not_document() -> None:
    kinds = {load(path)["payload"]["event"] for path in GOLDEN_FILES}

    assert kinds - set(DOCUMENTED_EVENTS)


def test_golden_cases_cover_every_attribute_update_mode_and_engagement_attribute() -> None:
    hubs = [load(path)["hub"] for path in GOLDEN_FILES]
    rules = [rule for hub in hubs for rule in (hub.get("event_rules") or {}).values()]
    patches = rules + [p for rule in rules for p in (rule.get("card_types") or {}).values()]
    modes = {update["mode"] for patch in patches for update in patch.get("attributes", [])}
    engagement = {key for hub in hubs for key in (hub.get("engagement_attributes") or {})}

    assert modes == {"set", "inc", "add", "object"}
    assert engagement == {
        "hubs_engaged",
        "first_engaged_at",
        "last_engaged_at",
        "entries",
        "prizes_won",
    }

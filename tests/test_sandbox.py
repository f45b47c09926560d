"""The Braze sandbox over real HTTP: Braze's rules for /users/track, faults, and inspection."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from integrations.braze_sandbox import (
    MAX_INPUT_MESSAGE,
    NO_DATA_MESSAGE,
    BrazeSandbox,
    SandboxConfigError,
)

KEY = "sandbox-own-test-key-7d41c0de"
OTHER_KEY = "sandbox-own-test-key-second-9999"
FORBIDDEN = "sandbox-own-key-lacking-users-track"
TIME = "2024-05-01T10:00:00Z"


@pytest.fixture
def sandbox() -> Iterator[BrazeSandbox]:
    """A fresh sandbox per test (shadows the shared one in conftest: these tests reconfigure it)."""
    with BrazeSandbox(port=0, api_keys={KEY, OTHER_KEY}, forbidden_keys={FORBIDDEN}) as server:
        yield server


def post(
    sandbox: BrazeSandbox,
    body: Any,
    *,
    key: str | None = KEY,
    path: str = "/users/track",
    raw: bytes | None = None,
) -> requests.Response:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    if raw is not None:
        return requests.post(sandbox.url + path, data=raw, headers=headers, timeout=5)
    return requests.post(sandbox.url + path, json=body, headers=headers, timeout=5)


def attributes(sandbox: BrazeSandbox, *objects: dict[str, Any]) -> dict[str, Any]:
    """Send one attributes request that must be accepted; return Braze's answer."""
    response = post(sandbox, {"attributes": list(objects)})
    assert response.status_code == 201, response.text
    return response.json()


def profile_attributes(sandbox: BrazeSandbox, external_id: str) -> dict[str, Any]:
    profile = sandbox.find_profile(external_id=external_id)
    assert profile is not None
    return profile["attributes"]


# ---- authentication


@pytest.mark.parametrize(
    ("authorization", "status", "message_part"),
    [
        (None, 401, "Invalid API key"),
        ("Basic abc", 401, "Invalid API key"),
        (f'Bearer "{KEY}"', 401, "quoted"),
        ("Bearer not-a-configured-key-abcd", 401, "abcd"),
        (f"Bearer {FORBIDDEN}", 403, "Access Denied"),
    ],
)
def test_refused_keys(
    sandbox: BrazeSandbox, authorization: str | None, status: int, message_part: str
) -> None:
    headers = {"Authorization": authorization} if authorization else {}

    response = requests.post(
        sandbox.url + "/users/track", json={"attributes": [{"external_id": "u"}]}, headers=headers
    )

    assert response.status_code == status
    assert message_part in response.json()["message"]
    assert "not-a-configured-key" not in response.text
    assert sandbox.profiles() == []


def test_any_configured_key_is_accepted_and_accept_any_key_opens_the_door(
    sandbox: BrazeSandbox,
) -> None:
    assert post(sandbox, {"attributes": [{"external_id": "u"}]}, key=OTHER_KEY).status_code == 201
    stranger = "some-random-key-1234567"
    assert post(sandbox, {"attributes": [{"external_id": "u"}]}, key=stranger).status_code == 401

    sandbox.configure(accept_any_key=True)

    assert post(sandbox, {"attributes": [{"external_id": "u"}]}, key=stranger).status_code == 201
    assert post(sandbox, {"attributes": [{"external_id": "u"}]}, key=FORBIDDEN).status_code == 403


def test_full_key_is_never_logged_or_shown(sandbox: BrazeSandbox) -> None:
    # given requests with good, unknown and legacy body keys
    post(sandbox, {"attributes": [{"external_id": "u", "x": 1}], "api_key": KEY})
    post(sandbox, {"attributes": [{"external_id": "u"}]}, key="unknown-key-0123456789")
    # when
    pages = [
        requests.get(sandbox.url + path, timeout=5).text
        for path in ("/_sandbox/", "/_sandbox/api/requests", "/_sandbox/api/config")
    ]
    # then
    for text in pages + [repr(sandbox.requests()), repr(sandbox.config())]:
        assert KEY not in text
        assert "unknown-key-0123456789" not in text
    assert [r["key_last4"] for r in sandbox.requests()] == [KEY[-4:], "6789"]


# ---- request-level rules


@pytest.mark.parametrize(
    ("raw", "message_part"),
    [
        (b"{not json", "Invalid JSON"),
        (b'[{"external_id": "u"}]', "JSON object"),
        (b'{"attributes": [{"external_id": "u", "n": NaN}]}', "Invalid JSON"),
        (b'{"attributes": {"external_id": "u"}}', "must be an array"),
        (b"{}", NO_DATA_MESSAGE),
        (b'{"attributes": [], "events": [], "purchases": []}', NO_DATA_MESSAGE),
        (b"\xff\xfe", "Invalid JSON"),
    ],
)
def test_bad_bodies_are_400(sandbox: BrazeSandbox, raw: bytes, message_part: str) -> None:
    response = post(sandbox, None, raw=raw)

    assert response.status_code == 400
    assert message_part in response.json()["message"]


def test_75_objects_per_array_are_accepted_76_are_not(sandbox: BrazeSandbox) -> None:
    # given
    objects = [{"external_id": f"u{i}"} for i in range(76)]
    # when
    too_many = post(sandbox, {"attributes": objects})
    full = post(sandbox, {"attributes": objects[:75], "events": []})
    # then
    assert too_many.status_code == 400
    assert too_many.json()["message"] == MAX_INPUT_MESSAGE
    assert full.status_code == 201
    assert full.json() == {"message": "success", "attributes_processed": 75, "events_processed": 0}
    assert len(sandbox.profiles()) == 75


def test_max_updates_per_request_counts_all_arrays(sandbox: BrazeSandbox) -> None:
    sandbox.configure(max_updates_per_request=50)
    event = {"external_id": "u", "name": "e", "time": TIME}
    body = {"attributes": [{"external_id": "u"}] * 30, "events": [event] * 21}

    assert post(sandbox, body).status_code == 400
    body["events"] = [event] * 20
    assert post(sandbox, body).status_code == 201


def test_body_over_4_mb_is_413_and_not_applied(sandbox: BrazeSandbox) -> None:
    body = {"attributes": [{"external_id": "u", "notes": "x" * (4 * 1024 * 1024)}]}

    response = post(sandbox, body)

    assert response.status_code == 413
    assert sandbox.profiles() == []


def test_counts_appear_only_for_arrays_sent(sandbox: BrazeSandbox) -> None:
    response = post(sandbox, {"events": [{"external_id": "u", "name": "e", "time": TIME}]})

    assert response.json() == {"message": "success", "events_processed": 1}


def test_unknown_path_is_404(sandbox: BrazeSandbox) -> None:
    assert post(sandbox, {}, path="/users/trak").status_code == 404
    assert requests.get(sandbox.url + "/users/track", timeout=5).status_code == 404


# ---- per-object validation


def _attr(**fields: Any) -> dict[str, Any]:
    return {"attributes": [{"external_id": "x", **fields}]}


def _event(**fields: Any) -> dict[str, Any]:
    return {"events": [{"external_id": "x", "name": "e", "time": TIME, **fields}]}


def _purchase(**fields: Any) -> dict[str, Any]:
    purchase = {"external_id": "x", "product_id": "p", "currency": "AUD", "price": 1.5}
    return {"purchases": [{**purchase, "time": TIME, **fields}]}


VALID_OBJECTS = {
    "attributes": _attr()["attributes"][0],
    "events": _event()["events"][0],
    "purchases": _purchase()["purchases"][0],
}

INVALID_OBJECTS = {
    "no identifier": {"attributes": [{"first_name": "A"}]},
    "two identifiers": _attr(braze_id="abc"),
    "alias without label": {"attributes": [{"user_alias": {"alias_name": "a"}}]},
    "alias not an object": {"attributes": [{"user_alias": "a"}]},
    "empty external_id": {"attributes": [{"external_id": ""}]},
    "dummy external_id": {"attributes": [{"external_id": "None"}]},
    "not an object": {"attributes": ["x"]},
    "update flag as text": _attr(_update_existing_only="true"),
    "dob wrong format": _attr(dob="02/07/1988"),
    "dob impossible date": _attr(dob="1988-02-30"),
    "country lower case": _attr(country="au"),
    "country alpha-3": _attr(country="AUS"),
    "gender unknown": _attr(gender="X"),
    "email_subscribe yes": _attr(email_subscribe="yes"),
    "email malformed": _attr(email="not-an-email"),
    "phone letters": _attr(phone="call me"),
    "phone too short": _attr(phone="12345"),
    "language alpha-3": _attr(language="eng"),
    "custom string 256": _attr(nickname="x" * 256),
    "key with $": _attr(**{"$bad": 1}),
    "inc not a number": _attr(score={"inc": "1"}),
    "add not a list": _attr(tags={"add": "a"}),
    "nested key with dot": _attr(profile={"a.b": 1}),
    "subscription group bad state": _attr(
        subscription_groups=[{"subscription_group_id": "g", "subscription_state": "opted_in"}]
    ),
    "email identifier invalid": {"attributes": [{"email": "nope", "first_name": "A"}]},
    "event without name": {"events": [{"external_id": "x", "time": TIME}]},
    "event without time": {"events": [{"external_id": "x", "name": "e"}]},
    "event time not ISO": _event(time="yesterday"),
    "event property time": _event(properties={"time": "x"}),
    "event property event_name": _event(properties={"event_name": "x"}),
    "event property $": _event(properties={"$x": 1}),
    "event property key 256": _event(properties={"k" * 256: 1}),
    "event 257 properties": _event(properties={f"p{i}": i for i in range(257)}),
    "event property string 256": _event(properties={"p": "x" * 256}),
    "purchase without product": {
        "purchases": [{"external_id": "x", "currency": "AUD", "price": 1, "time": TIME}]
    },
    "purchase currency 4 letters": _purchase(currency="AUDX"),
    "purchase price text": _purchase(price="1.50"),
    "purchase without time": {
        "purchases": [{"external_id": "x", "product_id": "p", "currency": "AUD", "price": 1}]
    },
    "purchase quantity 101": _purchase(quantity=101),
}


@pytest.mark.parametrize("body", INVALID_OBJECTS.values(), ids=INVALID_OBJECTS.keys())
def test_invalid_object_is_reported_by_index_and_not_applied(
    sandbox: BrazeSandbox, body: dict[str, Any]
) -> None:
    # given a valid object in front of the invalid one
    [(array, [invalid])] = body.items()
    valid = {**VALID_OBJECTS[array], "external_id": "ok"}
    # when
    response = post(sandbox, {array: [valid, invalid]})
    # then
    assert response.status_code == 201
    answer = response.json()
    assert answer["message"] == "success"
    assert answer[f"{array}_processed"] == 1
    [error] = answer["errors"]
    assert (error["input_array"], error["index"]) == (array, 1)
    assert isinstance(error["type"], str) and error["type"]
    assert sandbox.find_profile(external_id="x") is None
    assert sandbox.find_profile(external_id="ok") is not None


VALID_ATTRIBUTES = {
    "dob": "1988-07-02",
    "country": "AU",
    "gender": None,
    "email_subscribe": "opted_in",
    "push_subscribe": "unsubscribed",
    "email": "ada@example.com",
    "phone": "+61 412 345 678",
    "language": "en",
    "nickname": "x" * 255,
    "score": 3.5,
    "vip": True,
    "last_entry": "2024-05-01T10:00:00Z",
    "tags": ["a", "b"],
    "address": {"city": "Sydney", "since": {"$time": "2020-05-28"}},
}


def test_valid_standard_and_custom_attributes_are_applied(sandbox: BrazeSandbox) -> None:
    answer = attributes(sandbox, {"external_id": "u", **VALID_ATTRIBUTES})

    assert "errors" not in answer
    stored = profile_attributes(sandbox, "u")
    assert stored == {k: v for k, v in VALID_ATTRIBUTES.items() if v is not None}


# ---- identifiers and profile creation


@pytest.mark.parametrize(
    ("obj", "created"),
    [
        ({"external_id": "e1"}, True),
        ({"external_id": "e1", "_update_existing_only": False}, True),
        ({"external_id": "e1", "_update_existing_only": True}, False),
        ({"user_alias": {"alias_name": "a@x.com", "alias_label": "email"}}, False),
        (
            {
                "user_alias": {"alias_name": "a@x.com", "alias_label": "email"},
                "_update_existing_only": True,
            },
            False,
        ),
        (
            {
                "user_alias": {"alias_name": "a@x.com", "alias_label": "email"},
                "_update_existing_only": False,
            },
            True,
        ),
        ({"email": "a@x.com"}, True),
        ({"email": "a@x.com", "_update_existing_only": True}, False),
        ({"phone": "+61412345678"}, True),
        ({"phone": "+61412345678", "_update_existing_only": True}, False),
        ({"braze_id": "000000000000000000000000", "_update_existing_only": False}, False),
    ],
)
def test_creation_rules_per_identifier(
    sandbox: BrazeSandbox, obj: dict[str, Any], created: bool
) -> None:
    # when
    answer = attributes(sandbox, {**obj, "first_name": "Ada"})
    # then: not creating is not an error in Braze, it is only visible in the sandbox's log
    assert answer == {"message": "success", "attributes_processed": 1}
    assert len(sandbox.profiles()) == (1 if created else 0)
    notes = sandbox.requests()[-1]["notes"]
    assert any("not created" in note for note in notes) is not created


def test_alias_update_only_is_noted_in_the_request_log(sandbox: BrazeSandbox) -> None:
    attributes(sandbox, {"user_alias": {"alias_name": "a", "alias_label": "email"}})

    assert sandbox.requests()[-1]["notes"] == ["attributes[0]: not created: alias update-only"]


def test_alias_profile_is_found_by_alias_and_updated(sandbox: BrazeSandbox) -> None:
    alias = {"alias_name": "ada@example.com", "alias_label": "email"}
    attributes(
        sandbox,
        {"user_alias": alias, "_update_existing_only": False, "email": "ada@example.com"},
    )
    attributes(sandbox, {"user_alias": alias, "first_name": "Ada"})

    profile = sandbox.find_profile(user_alias=alias)
    assert profile is not None
    assert profile["attributes"] == {"email": "ada@example.com", "first_name": "Ada"}
    assert profile["identifiers"]["user_aliases"] == [alias]
    assert profile["identifiers"]["external_id"] is None
    assert len(sandbox.profiles()) == 1


def test_events_never_create_alias_profiles(sandbox: BrazeSandbox) -> None:
    alias = {"alias_name": "a", "alias_label": "email"}
    event = {"user_alias": alias, "name": "e", "time": TIME, "_update_existing_only": False}

    assert post(sandbox, {"events": [event]}).json() == {
        "message": "success",
        "events_processed": 1,
    }
    assert sandbox.profiles() == []


def test_braze_id_updates_an_existing_profile(sandbox: BrazeSandbox) -> None:
    attributes(sandbox, {"external_id": "u"})
    braze_id = sandbox.find_profile(external_id="u")["braze_id"]  # type: ignore[index]

    attributes(sandbox, {"braze_id": braze_id, "first_name": "Ada"})

    assert profile_attributes(sandbox, "u") == {"first_name": "Ada"}


def test_email_wins_over_phone(sandbox: BrazeSandbox) -> None:
    # given one profile with the email and another with the phone
    attributes(sandbox, {"external_id": "by-email", "email": "ada@example.com"})
    attributes(sandbox, {"external_id": "by-phone", "phone": "+61412345678"})
    # when an object carries both
    attributes(sandbox, {"email": "ada@example.com", "phone": "+61412345678", "marker": 1})
    # then the email decided
    assert profile_attributes(sandbox, "by-email")["marker"] == 1
    assert "marker" not in profile_attributes(sandbox, "by-phone")


def test_email_prefers_the_most_recent_profile_with_an_external_id(sandbox: BrazeSandbox) -> None:
    # given an email-only profile and two external_id profiles with the same email, where the
    # email-only one was updated last and "old" is the most recent with an external_id
    attributes(sandbox, {"email": "Ada@Example.com", "first_name": "email-only"})
    [email_only] = sandbox.profiles()
    attributes(sandbox, {"external_id": "old", "email": "ada@example.com"})
    attributes(sandbox, {"external_id": "new", "email": "ada@example.com"})
    attributes(sandbox, {"external_id": "old", "home_city": "Perth"})
    attributes(sandbox, {"braze_id": email_only["braze_id"], "home_city": "Perth"})
    # when
    attributes(sandbox, {"email": "ADA@example.com", "marker": 1})
    # then
    assert profile_attributes(sandbox, "old")["marker"] == 1
    assert "marker" not in profile_attributes(sandbox, "new")
    email_only_now = sandbox.find_profile(braze_id=email_only["braze_id"])
    assert email_only_now is not None and "marker" not in email_only_now["attributes"]
    assert len(sandbox.profiles()) == 3


def test_email_without_external_id_profiles_updates_the_most_recent(
    sandbox: BrazeSandbox,
) -> None:
    # given two alias-only profiles sharing an email
    for name in ("first", "second"):
        alias = {"alias_name": name, "alias_label": "l"}
        attributes(
            sandbox, {"user_alias": alias, "_update_existing_only": False, "email": "a@x.com"}
        )
    # when
    attributes(sandbox, {"email": "a@x.com", "marker": 1})
    # then
    second = sandbox.find_profile(alias_name="second", alias_label="l")
    first = sandbox.find_profile(alias_name="first", alias_label="l")
    assert second is not None and second["attributes"]["marker"] == 1
    assert first is not None and "marker" not in first["attributes"]


def test_find_profile_needs_exactly_one_identifier(sandbox: BrazeSandbox) -> None:
    with pytest.raises(ValueError):
        sandbox.find_profile(external_id="a", email="a@x.com")
    with pytest.raises(ValueError):
        sandbox.find_profile()


# ---- attribute semantics


def test_null_unsets_and_inc_increments(sandbox: BrazeSandbox) -> None:
    attributes(
        sandbox, {"external_id": "u", "first_name": "Ada", "score": 10, "visits": {"inc": 1}}
    )
    attributes(sandbox, {"external_id": "u", "first_name": None, "score": {"inc": -2.5}})
    attributes(sandbox, {"external_id": "u", "visits": {"inc": 2}})

    assert profile_attributes(sandbox, "u") == {"score": 7.5, "visits": 3}


def test_array_add_remove_keep_values_unique_and_readding_moves_to_end(
    sandbox: BrazeSandbox,
) -> None:
    attributes(sandbox, {"external_id": "u", "tags": ["a", "b", "a", "c"]})
    assert profile_attributes(sandbox, "u")["tags"] == ["b", "a", "c"]

    attributes(sandbox, {"external_id": "u", "tags": {"add": ["b", "d"]}})
    assert profile_attributes(sandbox, "u")["tags"] == ["a", "c", "b", "d"]

    attributes(sandbox, {"external_id": "u", "tags": {"remove": ["a", "zzz"]}})
    assert profile_attributes(sandbox, "u")["tags"] == ["c", "b", "d"]


def test_array_limit_drops_the_oldest(sandbox: BrazeSandbox) -> None:
    # given the default limit of 25
    attributes(sandbox, {"external_id": "u", "tags": [f"t{i}" for i in range(30)]})
    assert profile_attributes(sandbox, "u")["tags"] == [f"t{i}" for i in range(5, 30)]
    # when the limit is lowered
    sandbox.configure(array_limit=3)
    attributes(sandbox, {"external_id": "u", "tags": {"add": ["new"]}})
    # then
    assert profile_attributes(sandbox, "u")["tags"] == ["t28", "t29", "new"]


def test_nested_objects_overwrite_unless_merge_objects(sandbox: BrazeSandbox) -> None:
    attributes(sandbox, {"external_id": "u", "pet": {"name": "Rex", "vet": {"city": "Perth"}}})
    attributes(
        sandbox,
        {"external_id": "u", "pet": {"vet": {"phone": "1"}, "age": 3}, "_merge_objects": True},
    )
    assert profile_attributes(sandbox, "u")["pet"] == {
        "name": "Rex",
        "vet": {"city": "Perth", "phone": "1"},
        "age": 3,
    }

    attributes(sandbox, {"external_id": "u", "pet": {"name": "Tom"}})
    assert profile_attributes(sandbox, "u")["pet"] == {"name": "Tom"}


def test_array_of_objects_operations(sandbox: BrazeSandbox) -> None:
    attributes(sandbox, {"external_id": "u", "pets": [{"id": 1, "n": "a"}, {"id": 2, "n": "b"}]})
    attributes(
        sandbox,
        {
            "external_id": "u",
            "_merge_objects": True,
            "pets": {
                "$add": [{"id": 3, "n": "c"}],
                "$remove": [{"$identifier_key": "id", "$identifier_value": 1}],
                "$update": [
                    {"$identifier_key": "id", "$identifier_value": 2, "$new_object": {"n": "B"}}
                ],
            },
        },
    )

    assert profile_attributes(sandbox, "u")["pets"] == [{"id": 2, "n": "B"}, {"id": 3, "n": "c"}]


def test_subscription_groups_and_ignored_time_zone(sandbox: BrazeSandbox) -> None:
    groups = [
        {"subscription_group_id": "g1", "subscription_state": "subscribed"},
        {"subscription_group_id": "g2", "subscription_state": "unsubscribed"},
    ]
    attributes(sandbox, {"external_id": "u", "subscription_groups": groups, "time_zone": "Mars/X"})
    attributes(sandbox, {"external_id": "u", "time_zone": "Australia/Sydney"})

    profile = sandbox.find_profile(external_id="u")
    assert profile is not None
    assert profile["subscription_groups"] == {"g1": "subscribed", "g2": "unsubscribed"}
    assert profile["attributes"] == {"time_zone": "Australia/Sydney"}


def test_events_and_purchases_are_recorded_in_order_without_dedup(sandbox: BrazeSandbox) -> None:
    event = {"external_id": "u", "name": "entered", "time": TIME, "properties": {"card": "c1"}}
    purchase = _purchase()["purchases"][0] | {"external_id": "u"}

    post(sandbox, {"events": [event, event], "purchases": [purchase]})

    profile = sandbox.find_profile(external_id="u")
    assert profile is not None
    assert [e["name"] for e in profile["events"]] == ["entered", "entered"]
    assert profile["events"][0]["properties"] == {"card": "c1"}
    assert profile["purchases"][0]["product_id"] == "p"
    assert profile["purchases"][0]["quantity"] == 1


# ---- rate limit


def test_rate_limit_window_headers_and_429(sandbox: BrazeSandbox) -> None:
    # given two requests per minute, shared by all keys
    sandbox.configure(rate_limit=2, rate_window=60)
    # when
    first, second, third = (
        post(sandbox, {"attributes": [{"external_id": "u", "n": n}]}, key=key)
        for n, key in enumerate((KEY, OTHER_KEY, KEY), start=1)
    )
    # then
    assert [r.status_code for r in (first, second, third)] == [201, 201, 429]
    assert first.headers["X-RateLimit-Limit"] == "2"
    assert [r.headers["X-RateLimit-Remaining"] for r in (first, second, third)] == ["1", "0", "0"]
    reset = int(third.headers["X-RateLimit-Reset"])
    assert time.time() + 55 < reset <= time.time() + 61
    assert third.json() == {"message": "Rate limit exceeded"}
    assert profile_attributes(sandbox, "u") == {"n": 2}


def test_rate_limit_window_ends(sandbox: BrazeSandbox) -> None:
    sandbox.configure(rate_limit=1, rate_window=0.3)
    body = {"attributes": [{"external_id": "u"}]}

    assert post(sandbox, body).status_code == 201
    assert post(sandbox, body).status_code == 429
    time.sleep(0.35)
    assert post(sandbox, body).status_code == 201


def test_rate_limit_headers_on_refusals_too(sandbox: BrazeSandbox) -> None:
    response = post(sandbox, {"attributes": [{"external_id": "u"}]}, key="wrong-key-1234567")

    assert response.status_code == 401
    assert response.headers["X-RateLimit-Remaining"] == "3000"


# ---- faults


def test_fail_next_and_status_next(sandbox: BrazeSandbox) -> None:
    sandbox.configure(fail_next=2, status_next=[429, 401])
    body = {"attributes": [{"external_id": "u"}]}

    statuses = [post(sandbox, body).status_code for _ in range(5)]

    assert statuses == [429, 401, 500, 500, 201]
    assert sandbox.config()["fail_next"] == 0
    assert sandbox.config()["status_next"] == []
    assert len(sandbox.profiles()) == 1


def test_fail_rate_one_always_fails_with_a_5xx(sandbox: BrazeSandbox) -> None:
    sandbox.configure(fail_rate=1.0)

    statuses = {post(sandbox, {"attributes": [{"external_id": "u"}]}).status_code for _ in range(8)}

    assert statuses <= {500, 502, 503}
    assert sandbox.profiles() == []


def test_drop_next_closes_the_connection_without_answer(sandbox: BrazeSandbox) -> None:
    sandbox.configure(drop_next=1)

    with pytest.raises(requests.ConnectionError):
        post(sandbox, {"attributes": [{"external_id": "u"}]})

    assert post(sandbox, {"attributes": [{"external_id": "u"}]}).status_code == 201
    assert [r["status"] for r in sandbox.requests()] == [None, 201]


def test_drop_rate_one_always_drops(sandbox: BrazeSandbox) -> None:
    sandbox.configure(drop_rate=1.0)

    with pytest.raises(requests.ConnectionError):
        post(sandbox, {"attributes": [{"external_id": "u"}]})


def test_latency_delays_the_answer(sandbox: BrazeSandbox) -> None:
    sandbox.configure(latency_ms=250)

    started = time.perf_counter()
    post(sandbox, {"attributes": [{"external_id": "u"}]})

    assert time.perf_counter() - started >= 0.25


def test_request_in_flight_during_reset_is_not_applied(sandbox: BrazeSandbox) -> None:
    # given a request the client gave up on while the sandbox still sleeps in injected latency
    sandbox.configure(latency_ms=800)
    started = time.monotonic()
    outcome: list[BaseException] = []

    def impatient_client() -> None:
        try:
            requests.post(
                sandbox.url + "/users/track",
                json={"attributes": [{"external_id": "stray"}]},
                headers={"Authorization": f"Bearer {KEY}"},
                timeout=0.2,
            )
        except requests.Timeout as exc:
            outcome.append(exc)

    client = threading.Thread(target=impatient_client)
    client.start()
    client.join(timeout=5)
    assert outcome, "the client should have timed out during the injected latency"
    # when the sandbox is reset during the sleep and the sleep then ends
    sandbox.reset()
    time.sleep(max(0.0, started + 0.8 + 0.5 - time.monotonic()))
    # then the old request leaves no trace in the fresh state
    assert sandbox.profiles() == []
    assert sandbox.requests() == []
    assert sandbox.stats()["requests"] == 0


def test_client_gone_before_the_answer_is_one_debug_line(
    sandbox: BrazeSandbox, caplog: pytest.LogCaptureFixture
) -> None:
    # given a client that times out while the sandbox sleeps in injected latency
    caplog.set_level(logging.DEBUG, logger="integrations.braze_sandbox")
    sandbox.configure(latency_ms=400)
    with pytest.raises(requests.Timeout):
        requests.post(
            sandbox.url + "/users/track",
            json={"attributes": [{"external_id": "u"}]},
            headers={"Authorization": f"Bearer {KEY}"},
            timeout=0.1,
        )
    # when the sandbox answers after the client has gone
    deadline = time.monotonic() + 5
    while not _went_away(caplog) and time.monotonic() < deadline:
        time.sleep(0.02)
    # then that is one DEBUG line, not an error with a traceback
    assert len(_went_away(caplog)) == 1
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def _went_away(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "client went away" in r.getMessage()]


def test_connection_errors_outside_the_write_are_still_reported(
    sandbox: BrazeSandbox, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_handle(request: Any) -> None:
        raise ConnectionResetError("a bug, not a client going away")

    monkeypatch.setattr(sandbox._state, "handle", broken_handle)

    response = post(sandbox, {"attributes": [{"external_id": "u"}]})

    assert response.status_code == 500
    assert [r.levelno for r in caplog.records if "error while answering" in r.getMessage()] == [
        logging.ERROR
    ]


def test_faults_can_be_set_at_start() -> None:
    with BrazeSandbox(port=0, api_keys=[KEY], status_next=[503], rate_limit=7) as server:
        response = post(server, {"attributes": [{"external_id": "u"}]})

    assert response.status_code == 503
    assert response.headers["X-RateLimit-Limit"] == "7"


@pytest.mark.parametrize(
    "changes",
    [
        {"fail_rate": 1.5},
        {"drop_next": -1},
        {"status_next": [200]},
        {"nonsense": 1},
        {"rate_limit": "5"},
    ],
)
def test_bad_settings_are_refused(sandbox: BrazeSandbox, changes: dict[str, Any]) -> None:
    with pytest.raises(SandboxConfigError):
        sandbox.configure(**changes)

    response = requests.post(sandbox.url + "/_sandbox/api/config", json=changes, timeout=5)
    assert response.status_code == 400


def test_config_and_reset_over_http(sandbox: BrazeSandbox) -> None:
    # given
    config = requests.post(
        sandbox.url + "/_sandbox/api/config", json={"fail_next": 1, "latency_ms": 5}, timeout=5
    ).json()
    assert (config["fail_next"], config["latency_ms"]) == (1, 5)
    assert config["api_keys"] == sorted([KEY[-4:], OTHER_KEY[-4:]])
    post(sandbox, {"attributes": [{"external_id": "u"}]})
    post(sandbox, {"attributes": [{"external_id": "u"}]})
    assert sandbox.stats() == {
        "requests": 2,
        "by_status": {"500": 1, "201": 1},
        "profiles": 1,
        "sends": 0,
    }
    # when
    requests.post(sandbox.url + "/_sandbox/api/reset", json={"config": True}, timeout=5)
    # then
    assert sandbox.requests() == [] and sandbox.profiles() == []
    assert sandbox.config()["latency_ms"] == 0


# ---- transactional sends


def send(sandbox: BrazeSandbox, body: dict[str, Any], campaign: str = "c1") -> requests.Response:
    return post(sandbox, body, path=f"/transactional/v1/campaigns/{campaign}/send")


def test_transactional_send_is_queued_and_recorded(sandbox: BrazeSandbox) -> None:
    body = {
        "recipient": {"external_user_id": "u", "attributes": {"first_name": "Ada"}},
        "trigger_properties": {"prize": "Trip"},
    }

    response = send(sandbox, body)

    assert response.status_code == 201
    answer = response.json()
    assert answer["status"] == "queued" and answer["dispatch_id"]
    assert answer["metadata"]["type"] == "transactional"
    [record] = sandbox.sends()
    assert record["trigger_properties"] == {"prize": "Trip"}
    assert profile_attributes(sandbox, "u") == {"first_name": "Ada"}


def test_transactional_external_send_id_deduplicates(sandbox: BrazeSandbox) -> None:
    body = {"external_send_id": "entry-42", "recipient": {"external_user_id": "u"}}

    first, again = send(sandbox, body), send(sandbox, body)
    other_campaign = send(sandbox, body, campaign="c2")

    assert first.json()["dispatch_id"] == again.json()["dispatch_id"]
    assert other_campaign.json()["dispatch_id"] != first.json()["dispatch_id"]
    assert len(sandbox.sends()) == 2


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"recipient": {}},
        {"recipient": {"external_user_id": "u", "user_alias": {"alias_name": "a"}}},
        {"recipient": {"user_alias": {"alias_name": "a"}}},
        {"recipient": {"external_user_id": "u"}, "external_send_id": "has space"},
        {"recipient": {"external_user_id": "u"}, "trigger_properties": []},
        {"recipient": {"external_user_id": "u", "attributes": {"dob": "1/1/2000"}}},
    ],
)
def test_transactional_bad_bodies_are_400(sandbox: BrazeSandbox, body: dict[str, Any]) -> None:
    assert send(sandbox, body).status_code == 400
    assert sandbox.sends() == []


def test_transactional_needs_a_valid_key(sandbox: BrazeSandbox) -> None:
    response = post(
        sandbox,
        {"recipient": {"external_user_id": "u"}},
        path="/transactional/v1/campaigns/c1/send",
        key=None,
    )

    assert response.status_code == 401


# ---- inspection


def test_page_escapes_values(sandbox: BrazeSandbox) -> None:
    # given a profile and a request carrying markup
    attributes(sandbox, {"external_id": "<b>u</b>", "favourite": "<script>alert(1)</script>"})
    # when
    response = requests.get(sandbox.url + "/_sandbox/", timeout=5)
    # then
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert "<script>alert(1)</script>" not in response.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text
    assert "<b>u</b>" not in response.text
    assert 'http-equiv="refresh" content="2"' in response.text.replace("'", '"')


def test_json_inspection_endpoints(sandbox: BrazeSandbox) -> None:
    post(sandbox, {"attributes": [{"external_id": "u1"}]})
    post(sandbox, {"attributes": [{"external_id": "u2"}]})

    log = requests.get(sandbox.url + "/_sandbox/api/requests", timeout=5).json()
    profiles = requests.get(sandbox.url + "/_sandbox/api/profiles", timeout=5).json()

    assert [r["body"]["attributes"][0]["external_id"] for r in log] == ["u1", "u2"]
    assert {"time", "path", "status", "body", "response", "key_last4"} <= set(log[0])
    assert log[0]["status"] == 201 and log[0]["path"] == "/users/track"
    assert sorted(p["identifiers"]["external_id"] for p in profiles) == ["u1", "u2"]
    assert {"identifiers", "attributes", "events", "purchases", "created_at", "updated_at"} <= set(
        profiles[0]
    )
    assert requests.get(sandbox.url + "/_sandbox/api/sends", timeout=5).json() == []


def test_sandbox_restarts_cleanly_and_rejects_a_second_start() -> None:
    server = BrazeSandbox(port=0, api_keys=[KEY]).start()
    try:
        with pytest.raises(RuntimeError):
            server.start()
    finally:
        server.stop()
    server.stop()  # idempotent
    assert not server.running


def test_serve_forever_serves_in_the_calling_thread_until_stopped() -> None:
    # given
    server = BrazeSandbox(port=0, api_keys=[KEY])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while not server.running and time.monotonic() < deadline:
        time.sleep(0.01)
    # when
    status = post(server, {"attributes": [{"external_id": "u"}]}).status_code
    server.stop()
    thread.join(timeout=5)
    # then
    assert status == 201
    assert not thread.is_alive()
    assert not server.running

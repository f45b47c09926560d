"""The webhook's fast path: the per-process hub cache, the one-statement INSERT, the cheap
storability check, and the Redis window counter and trigger (portal/cache.py)."""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime

import pytest
from django.test import override_settings

from integrations.models import Submission
from integrations.services import intake, intake_window
from integrations.services.hubs import hub_token_issue
from integrations.services.insert import JsonText, row_insert_new
from tests.conftest import komo_entry

pytestmark = pytest.mark.django_db


def test_a_replaced_token_stops_working_at_once_in_the_process_that_replaced_it(make_hub):
    hub, old = make_hub()
    assert intake.hub_authenticate_by_slug(slug=hub.slug, token=old) is not None  # now cached
    new = hub_token_issue(hub=hub)
    assert intake.hub_authenticate_by_slug(slug=hub.slug, token=old) is None
    assert intake.hub_authenticate_by_slug(slug=hub.slug, token=new) is not None


def test_the_cache_serves_a_hub_without_asking_the_database(make_hub, django_assert_num_queries):
    hub, token = make_hub()
    intake.hub_authenticate_by_slug(slug=hub.slug, token=token)
    with django_assert_num_queries(0):
        assert intake.hub_authenticate_by_slug(slug=hub.slug, token=token) == hub


@override_settings(WEBHOOK_HUB_CACHE_SECONDS=0)
def test_without_the_cache_every_lookup_asks(make_hub, django_assert_num_queries):
    hub, token = make_hub()
    intake.hub_authenticate_by_slug(slug=hub.slug, token=token)
    with django_assert_num_queries(1):
        intake.hub_authenticate_by_slug(slug=hub.slug, token=token)


def test_an_unknown_slug_is_still_unknown_when_cached(db):
    for _ in range(2):
        with pytest.raises(intake.Hub.DoesNotExist):
            intake.hub_authenticate_by_slug(slug="no-such-hub", token="x")


def test_a_repeat_is_answered_with_the_stored_row_in_one_statement(make_hub):
    hub, _ = make_hub()
    payload = komo_entry()
    first = intake.submission_receive(hub=hub, payload=payload)
    again = intake.submission_receive(hub=hub, payload=payload)
    assert (first.created, again.created) == (True, False)
    assert again.submission.pk == first.submission.pk
    assert Submission.objects.count() == 1


def test_row_insert_new_stores_the_values_and_the_defaults_and_refuses_a_duplicate(make_hub):
    # given
    hub, _ = make_hub()
    event = "CompetitionEntrySuccess"
    values = {"hub": hub, "komo_id": "k-1", "event": event, "payload": {"a": [1]}}
    # when
    stored = row_insert_new(Submission, values=values, unique=("hub", "komo_id"))
    duplicate = row_insert_new(
        Submission, values={**values, "event": "x", "payload": {}}, unique=("hub", "komo_id")
    )
    # then
    assert (stored, duplicate) == (True, False)
    stored = Submission.objects.get(komo_id="k-1")
    assert (stored.hub, stored.payload, stored.event) == (hub, {"a": [1]}, event)
    # constant defaults, and callable ones called per row
    assert (stored.status, stored.attempts, stored.problems, stored.status_reason) == (
        "pending", 0, [], "")
    assert stored.public_id and stored.received_at
    assert Submission.objects.count() == 1


def test_callable_defaults_are_called_for_every_row(make_hub):
    hub, _ = make_hub()
    for n in range(2):
        row_insert_new(
            Submission, values={"hub_id": hub.pk, "komo_id": f"k-{n}", "event": "e", "payload": {}},
            unique=("hub", "komo_id"),
        )
    first, second = Submission.objects.order_by("komo_id")
    assert first.public_id != second.public_id


def test_json_text_is_stored_as_received_json(make_hub):
    hub, _ = make_hub()
    text = '{"id": "k-9", "nested": {"list": [1, 2.5, "x"]}, "e": "é"}'
    row_insert_new(
        Submission,
        values={"hub": hub, "komo_id": "k-9", "event": "e", "payload": JsonText(text)},
        unique=("hub", "komo_id"),
    )
    assert Submission.objects.get(komo_id="k-9").payload == json.loads(text)


def test_an_unknown_field_is_refused(make_hub):
    hub, _ = make_hub()
    with pytest.raises(ValueError, match="no field"):
        row_insert_new(Submission, values={"hub": hub, "nope": 1}, unique=("hub", "komo_id"))


@pytest.mark.parametrize(
    "body",
    [
        {"id": "1", "a": "plain", "n": 1.5, "b": True, "z": None},
        {"id": "1", "nul": "a\x00b"},
        {"id": "1", "surrogate": "\ud800"},
        {"id": "1", "huge": float("inf")},
        {"id": "1", "nested": {"deep": ["x\x00"]}},
        {"id": "1", "k\x00ey": "v"},
    ],
)
def test_the_quick_check_of_unescaped_text_agrees_with_the_full_walk(body):
    # Every text a webhook body can be (UTF-8 bytes, decoded) for this payload, with and without
    # escapes for non-ASCII characters: the quick path must find what the full walk finds.
    for ensure_ascii in (True, False):
        text = json.dumps(body, ensure_ascii=ensure_ascii)
        try:
            text = text.encode("utf-8").decode("utf-8")
        except UnicodeEncodeError:  # a raw surrogate: no UTF-8 body can carry it unescaped
            continue
        assert intake.storable_problem(body, text=text) == intake.storable_problem(body)


def test_the_quick_check_still_walks_a_nested_body():
    body = {"id": "1", "deep": [[[[]]]]}
    for _ in range(40):
        body = {"x": body}
    assert intake.storable_problem(body, text=json.dumps(body)) is not None


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (the CI's 2nd run)")
def test_the_redis_window_counter_counts_and_expires(settings):
    from django.core.cache import caches

    cache = caches["default"]
    key = f"window-test-{uuid.uuid4().hex}"
    assert [cache.window_incr(key, n, 5)[0] for n in (1, 1, 3)] == [1, 2, 5]
    assert cache.get(key) == 5
    client = cache._cache.get_client(key, write=True)
    assert 0 < client.ttl(cache.make_and_validate_key(key)) <= 5


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (the CI's 2nd run)")
def test_the_redis_add_keeps_djangos_meaning():
    from django.core.cache import caches

    cache = caches["default"]
    key = f"add-test-{uuid.uuid4().hex}"
    assert cache.add(key, 1, 60) is True
    assert cache.add(key, 2, 60) is False
    assert cache.get(key) == 1
    assert cache.add(f"{key}-text", "text", 60) is True
    assert cache.get(f"{key}-text") == "text"


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (the CI's 2nd run)")
def test_the_redis_count_and_add_share_one_round_trip():
    from django.core.cache import caches

    cache = caches["default"]
    key, flag = f"window-{uuid.uuid4().hex}", f"flag-{uuid.uuid4().hex}"
    assert cache.window_incr(key, 1, 5, flag_key=flag) == (1, True)
    assert cache.window_incr(key, 2, 5, flag_key=flag) == (3, False)
    assert cache.window_incr(key, 0, 5, flag_key=f"{flag}-2") == (0, True)  # the flag alone
    assert (cache.get(key), cache.get(flag)) == (3, 1)


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (the CI's 2nd run)")
@pytest.mark.django_db(transaction=True)  # no surrounding transaction: committed at once
def test_a_webhook_counts_and_triggers_in_one_redis_write(make_hub, monkeypatch, settings):
    # given
    from integrations.services import dispatch

    hub, _ = make_hub()
    settings.WEBHOOK_RATE_PER_MINUTE = 10
    dispatch.hub_delivery_flag_clear(hub_id=hub.pk)
    enqueued = []
    monkeypatch.setattr(
        intake_window, "hub_delivery_enqueue", lambda hub_id: enqueued.append(hub_id)
    )
    # when two webhooks are settled
    intake.intake_settle(hub=hub, trigger=True)
    intake.intake_settle(hub=hub, trigger=True)
    # then both are counted, and one task is enqueued
    assert intake_window._windows[hub.pk].seen == 2
    assert enqueued == [hub.pk]


def test_values_that_go_in_unchanged_are_what_djangos_conversion_gives(make_hub):
    # The INSERT skips Django's conversion where it would return the value unchanged (text; on
    # PostgreSQL aware datetimes and UUIDs); whatever the database, the result must be the same.
    from datetime import UTC, datetime

    from django.db import connection

    from integrations.services.insert import _param, _statement

    hub, _ = make_hub()
    values = {
        "hub_id": hub.pk, "public_id": uuid.uuid4(), "komo_id": "k-1", "event": "E",
        "komo_timestamp": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "payload": {"a": 1},
        "received_at": datetime(2026, 1, 2, 3, 4, 5, 600, tzinfo=UTC), "status": "pending",
        "next_attempt_at": None, "email_hash": "a" * 32, "phone_hash": "",
        "external_id_hash": "x",
    }  # fmt: skip
    _sql, columns = _statement(Submission, ("hub", "komo_id"), frozenset(values), connection.vendor)
    unchanged = [column for column in columns if column.source == "given" and column.unchanged]
    assert {column.field.name for column in unchanged} >= {"komo_id", "event", "email_hash"}
    for column in unchanged:
        field = column.field
        expected = field.get_db_prep_save(values[field.attname], connection)
        assert _param(column, values, connection) == expected, field.name


def test_given_values_django_would_not_convert_go_in_as_they_are(make_hub):
    """An int for a foreign key, None for a nullable column, an aware datetime: stored as given
    (without Django's conversion); an empty-container default is a constant of the statement."""
    hub, _ = make_hub()
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    row_insert_new(
        Submission,
        values={"hub_id": hub.pk, "komo_id": "k-7", "event": "e", "payload": {},
                "komo_timestamp": when, "next_attempt_at": None, "delivered_at": when},
        unique=("hub", "komo_id"),
    )  # fmt: skip
    stored = Submission.objects.get(komo_id="k-7")
    assert (stored.hub_id, stored.komo_timestamp, stored.next_attempt_at) == (hub.pk, when, None)
    assert (stored.delivered_at, stored.problems) == (when, [])

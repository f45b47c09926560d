"""The webhook's fast path: the per-process hub cache, the one-statement INSERT, and the Redis
window counter (portal/cache.py)."""

from __future__ import annotations

import os
import uuid

import pytest
from django.test import override_settings

from integrations.models import Submission
from integrations.services import intake
from integrations.services.hubs import hub_token_issue
from integrations.services.insert import row_insert_new
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


def test_row_insert_new_stores_every_field_and_refuses_a_duplicate(make_hub):
    hub, _ = make_hub()
    row = Submission(hub=hub, komo_id="k-1", event="CompetitionEntrySuccess", payload={"a": [1]})
    assert row_insert_new(row, unique=("hub", "komo_id")) is True
    stored = Submission.objects.get(pk=row.pk)
    assert (stored.public_id, stored.payload, stored.problems) == (row.public_id, {"a": [1]}, [])
    duplicate = Submission(hub=hub, komo_id="k-1", event="x", payload={})
    assert row_insert_new(duplicate, unique=("hub", "komo_id")) is False
    assert duplicate.pk is None


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (the CI's 2nd run)")
def test_the_redis_window_counter_counts_and_expires(settings):
    from django.core.cache import caches

    cache = caches["default"]
    key = f"window-test-{uuid.uuid4().hex}"
    assert [cache.incr_window(key, 5) for _ in range(3)] == [1, 2, 3]
    assert cache.get(key) == 3
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

"""skip_unchanged: attribute values Braze already has for a person are not sent again."""

from __future__ import annotations

import dataclasses

import pytest

from integrations.models import DeliveredValue, FieldMapping, Submission, SubmissionStatus
from integrations.services import unchanged
from integrations.services.braze_api import braze_client
from integrations.services.delivery import delivery_run
from integrations.services.intake import submission_receive
from tests.conftest import komo_entry

ALIAS = {"alias_name": "priya@example.com", "alias_label": "email"}


def test_unchanged_values_are_dropped_and_the_identifier_is_kept():
    attributes = {"user_alias": ALIAS, "_update_existing_only": False, "first_name": "Priya"}
    known = unchanged.hashes_of({**attributes, "last_name": "N"}, "alias_email")
    reduced, dropped = unchanged.unchanged_dropped(
        {**attributes, "last_name": "Natarajan"},
        known,
        identity_type="alias_email",
        creates_users=True,
    )
    assert reduced == {
        "user_alias": ALIAS,
        "_update_existing_only": False,
        "last_name": "Natarajan",
    }
    assert dropped == 1


def test_the_identity_attribute_of_email_hubs_is_never_dropped():
    attributes = {"email": "priya@example.com", "_update_existing_only": True, "city": "Perth"}
    known = unchanged.hashes_of(attributes, "email")
    assert "email" not in known
    reduced, _ = unchanged.unchanged_dropped(
        attributes, known, identity_type="email", creates_users=True
    )
    assert reduced == {"email": "priya@example.com", "_update_existing_only": True}


@pytest.mark.parametrize("known", [{}, {"entries": "anything", "tags": "anything"}])
def test_operations_are_always_sent(known):
    attributes = {"external_id": "u1", "entries": {"inc": 1}, "tags": {"add": ["x"]}}
    reduced, dropped = unchanged.unchanged_dropped(
        attributes, known, identity_type="external_id", creates_users=True
    )
    assert reduced == attributes
    assert dropped == 0
    assert unchanged.value_hash({"inc": 1}) is None
    assert unchanged.hashes_of(attributes, "external_id") == {}


def test_control_keys_are_never_dropped():
    attributes = {"external_id": "u1", "_merge_objects": True, "card": {"x": 1}, "city": "Perth"}
    known = unchanged.hashes_of(attributes, "external_id")
    assert set(known) == {"city"}
    reduced, dropped = unchanged.unchanged_dropped(
        attributes, known, identity_type="external_id", creates_users=True
    )
    assert reduced == {"external_id": "u1", "_merge_objects": True, "card": {"x": 1}}
    assert dropped == 1


@pytest.mark.parametrize(("creates_users", "kept"), [(True, True), (False, False)])
def test_an_object_left_with_only_its_identifier(creates_users, kept):
    attributes = {"user_alias": ALIAS, "_update_existing_only": not creates_users, "x": "1"}
    known = unchanged.hashes_of(attributes, "alias_email")
    reduced, dropped = unchanged.unchanged_dropped(
        attributes, known, identity_type="alias_email", creates_users=creates_users
    )
    assert dropped == 1
    assert (reduced is not None) is kept


def test_person_key_is_the_identifier_whatever_the_other_values():
    one = unchanged.person_key({"user_alias": ALIAS, "first_name": "A"}, "alias_email")
    two = unchanged.person_key({"first_name": "B", "user_alias": ALIAS}, "alias_email")
    other = unchanged.person_key(
        {"user_alias": {**ALIAS, "alias_name": "x@example.com"}}, "alias_email"
    )
    assert one == two != other
    assert unchanged.person_key({"first_name": "A"}, "alias_email") is None


# --- delivery against the sandbox ------------------------------------------------------------


@pytest.fixture
def fresh_budget(db):
    from django.core.cache import cache

    cache.clear()
    braze_client.cache_clear()
    yield
    braze_client.cache_clear()


@pytest.fixture
def skipping_hub(sandbox_hub, fresh_budget):
    hub, token = sandbox_hub
    type(hub).objects.filter(pk=hub.pk).update(skip_unchanged=True)
    hub.refresh_from_db()
    return hub


def sent_attributes(sandbox) -> list[dict]:
    """Attributes objects of the requests the sandbox accepted."""
    return [
        obj
        for r in sandbox.requests()
        if r["status"] == 201
        for obj in r["body"].get("attributes", [])
    ]


@pytest.mark.django_db
def test_a_repeat_sends_only_what_changed(skipping_hub, sandbox):
    # given: a person delivered once
    submission_receive(hub=skipping_hub, payload=komo_entry(email="priya@example.com"))
    delivery_run(hub_id=skipping_hub.pk)
    # when: the same person enters again with a new postcode
    submission_receive(
        hub=skipping_hub, payload=komo_entry(email="priya@example.com", postcode="6000")
    )
    delivery_run(hub_id=skipping_hub.pk)
    # then
    first, second = sent_attributes(sandbox)
    assert first["first_name"] == "Priya"
    assert first["postcode"] == "3056"
    assert second == {
        "user_alias": {"alias_name": "priya@example.com", "alias_label": "email"},
        "_update_existing_only": False,
        "postcode": "6000",
    }
    assert sandbox.find_profile(**second["user_alias"])["attributes"]["first_name"] == "Priya"
    assert Submission.objects.filter(status=SubmissionStatus.DELIVERED).count() == 2


@pytest.mark.django_db
def test_hashes_are_written_only_after_braze_accepted(skipping_hub, sandbox):
    # given: Braze fails the first request
    sandbox.configure(fail_next=1)
    submission_receive(hub=skipping_hub, payload=komo_entry(email="priya@example.com"))
    delivery_run(hub_id=skipping_hub.pk)
    assert not DeliveredValue.objects.exists()
    # when: the retry goes through
    Submission.objects.update(next_attempt_at=Submission.objects.get().received_at)
    delivery_run(hub_id=skipping_hub.pk)
    # then: everything was sent in full again, and only now remembered
    assert len(sandbox.requests()) == 2
    assert [len(obj) for obj in sent_attributes(sandbox)] == [9]
    assert set(DeliveredValue.objects.get().hashes) >= {"first_name", "postcode", "dob"}


@pytest.mark.django_db
def test_an_item_error_leaves_that_person_unremembered(skipping_hub, sandbox):
    FieldMapping.objects.filter(hub=skipping_hub, attribute="dob").update(value_type="string")
    submission_receive(
        hub=skipping_hub, payload=komo_entry(email="bad@example.com", birthday="02/07/1988")
    )
    submission_receive(hub=skipping_hub, payload=komo_entry(email="good@example.com"))
    delivery_run(hub_id=skipping_hub.pk)
    keys = list(DeliveredValue.objects.values_list("person_key", flat=True))
    assert len(keys) == 1
    good = {"alias_name": "good@example.com", "alias_label": "email"}
    assert keys == [unchanged.person_key({"user_alias": good}, "alias_email")]
    assert "good@example.com" not in keys[0]  # a keyed hash, never the address


@pytest.fixture
def update_only_hub(make_hub, sandbox, fresh_budget):
    hub, _ = make_hub(endpoint=sandbox.url, create_missing_users=False)
    type(hub).objects.filter(pk=hub.pk).update(skip_unchanged=True)
    hub.refresh_from_db()
    return hub


@pytest.mark.django_db
def test_an_update_only_repeat_sends_no_attributes_object(update_only_hub, sandbox):
    submission_receive(hub=update_only_hub, payload=komo_entry(email="priya@example.com"))
    delivery_run(hub_id=update_only_hub.pk)
    submission_receive(hub=update_only_hub, payload=komo_entry(email="priya@example.com"))
    delivery_run(hub_id=update_only_hub.pk)
    first, *later = sandbox.requests()
    assert len(first["body"]["attributes"]) == 1
    assert all("attributes" not in r["body"] for r in later)  # its events, if any, still go
    assert Submission.objects.filter(status=SubmissionStatus.DELIVERED).count() == 2


@pytest.mark.django_db
def test_nothing_left_to_send_means_no_request(update_only_hub, sandbox, monkeypatch):
    # given: a hub whose submissions carry attributes only
    from integrations.services import delivery

    real = delivery.map_submission
    monkeypatch.setattr(
        delivery,
        "map_submission",
        lambda spec, p, **kw: dataclasses.replace(real(spec, p, **kw), events=[]),
    )
    submission_receive(hub=update_only_hub, payload=komo_entry(email="priya@example.com"))
    delivery_run(hub_id=update_only_hub.pk)
    # when: the same values come again
    repeat = submission_receive(hub=update_only_hub, payload=komo_entry(email="priya@example.com"))
    delivery_run(hub_id=update_only_hub.pk)
    # then
    assert len(sandbox.requests()) == 1
    repeat.submission.refresh_from_db()
    assert repeat.submission.status == SubmissionStatus.DELIVERED
    assert repeat.submission.attempts == 0
    assert "already" in repeat.submission.status_reason


@pytest.mark.django_db
def test_hubs_without_the_option_send_everything(sandbox_hub, sandbox, fresh_budget):
    hub, _ = sandbox_hub
    for _ in range(2):
        submission_receive(hub=hub, payload=komo_entry(email="priya@example.com"))
        delivery_run(hub_id=hub.pk)
    first, second = sent_attributes(sandbox)
    assert first == second
    assert not DeliveredValue.objects.exists()

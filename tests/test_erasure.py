"""Erasure of one person: every trace across hubs, queued deliveries stopped, a record without
personal data; Braze's /users/delete in batches of at most 50."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from integrations import blind_index
from integrations.braze.client import BrazeClient, delete_bodies
from integrations.models import (
    AttemptItem,
    DeliveredValue,
    DeliveryAttempt,
    ErasureRecord,
    Hub,
    Submission,
    SubmissionStatus,
    TransactionalSend,
)
from integrations.services import braze_api
from integrations.services.braze_api import braze_client
from integrations.services.delivery import delivery_run
from integrations.services.erasure import (
    ErasureInputError,
    erasure_preview,
    person_erase,
)
from integrations.services.intake import submission_receive
from tests.conftest import FORBIDDEN_KEY, komo_entry

pytestmark = pytest.mark.django_db

ALEX = "alex.wong@example.com"
ALEX_ALIAS = {"alias_name": ALEX, "alias_label": "email"}


@pytest.fixture(autouse=True)
def _fresh_client_and_cache():
    from django.core.cache import cache

    cache.clear()
    braze_client.cache_clear()
    yield
    braze_client.cache_clear()


@pytest.fixture
def two_hubs(make_hub, sandbox):
    first, _ = make_hub(endpoint=sandbox.url)
    second, _ = make_hub(
        endpoint=sandbox.url, slug="winter-comp", name="Winter competition",
        events=["CompetitionEntrySuccess", "PrizeAwarded"],
        transactional={"PrizeAwarded": {"campaign_id": "prize-email"}},
    )
    Hub.objects.filter(pk=first.pk).update(skip_unchanged=True)
    first.refresh_from_db()
    return first, second


def receive(hub, email: str, **changes):
    return submission_receive(hub=hub, payload=komo_entry(email=email, **changes)).submission


def all_stored_text() -> str:
    """Everything the portal keeps, decrypted, as one text (to look for the person in)."""
    parts = []
    for submission in Submission.objects.all():
        parts.append(json.dumps(submission.payload))
    for attempt in DeliveryAttempt.objects.all():
        parts += [json.dumps(attempt.request_body), attempt.response_body]
    for item in AttemptItem.objects.all():
        parts.append(item.error)
    for send in TransactionalSend.objects.all():
        parts += [json.dumps(send.request_body), send.response_body]
    for record in ErasureRecord.objects.values():
        parts.append(json.dumps(record, default=str))
    return "\n".join(parts).lower()


def test_erasure_removes_every_trace_across_hubs(two_hubs, sandbox):
    # given: Alex in both hubs, delivered (sharing requests with Bea), a prize email sent
    first, second = two_hubs
    for hub in (first, second):
        receive(hub, "Alex.Wong@Example.com")
        receive(hub, "bea.lim@example.com")
    receive(second, ALEX, event="PrizeAwarded", prize_id="p-1", prize_name="First Prize")
    delivery_run(hub_id=first.pk)
    delivery_run(hub_id=second.pk)
    assert TransactionalSend.objects.filter(submission__hub=second).count() == 1
    assert DeliveredValue.objects.filter(hub=first).count() == 2
    assert "alex.wong" in all_stored_text()

    # when
    record = person_erase("email", " ALEX.WONG@example.com ", Hub.objects.all(), braze=False)

    # then: nothing of Alex anywhere; Bea untouched
    text = all_stored_text()
    assert "alex" not in text
    assert Submission.objects.filter(hub=first).count() == 1
    assert Submission.objects.filter(hub=second).count() == 1
    assert "bea.lim" in text
    assert TransactionalSend.objects.count() == 0
    assert DeliveredValue.objects.filter(hub=first).count() == 1
    for attempt in DeliveryAttempt.objects.all():
        [bea] = attempt.request_body["attributes"]
        assert bea["user_alias"]["alias_name"] == "bea.lim@example.com"
    assert record.counts == {
        "summer-comp": {"submissions": 1, "attempt_items": 1, "transactional_sends": 0,
                        "delivery_attempts_scrubbed": 1, "delivered_values": 1},
        "winter-comp": {"submissions": 2, "attempt_items": 2, "transactional_sends": 1,
                        "delivery_attempts_scrubbed": 1, "delivered_values": 0},
    }
    assert record.actor == "command" and record.identifier_kind == "email"
    assert record.hub_slugs == ["summer-comp", "winter-comp"]


def test_the_erasure_record_keeps_no_personal_data(two_hubs, django_user_model):
    first, _second = two_hubs
    receive(first, ALEX)
    user = django_user_model.objects.create_user("support", is_staff=True)

    record = person_erase("email", ALEX, Hub.objects.all(), user=user)

    stored = json.dumps(ErasureRecord.objects.values().get(pk=record.pk), default=str).lower()
    assert "alex" not in stored and "example.com" not in stored
    for kind, normal in (("email", ALEX), ("email_local", "alex.wong")):
        assert blind_index.blind_hash(kind, normal) not in stored
    assert record.actor == "support" and record.user == user


def test_queued_submissions_are_never_sent_after_erasure(two_hubs, sandbox):
    first, _ = two_hubs
    receive(first, ALEX)
    receive(first, "bea.lim@example.com")

    person_erase("email", ALEX, [first])
    delivery_run(hub_id=first.pk)

    [request] = sandbox.requests()
    assert "alex" not in json.dumps(request["body"]).lower()
    assert not [p for p in sandbox.profiles() if "alex" in json.dumps(p).lower()]


def test_erasure_between_claim_and_result_resurrects_nothing(two_hubs, sandbox, monkeypatch):
    # given: a worker has claimed Alex's and Bea's submissions and its request is out
    first, _ = two_hubs
    alex = receive(first, ALEX)
    bea = receive(first, "bea.lim@example.com")
    real = BrazeClient(endpoint_guard=None)

    class ErasingWhileOut:
        def track(self, **kwargs):
            result = real.track(**kwargs)
            person_erase("email", ALEX, [first])  # support erases Alex meanwhile
            return result

    monkeypatch.setattr(braze_api, "braze_client", lambda: ErasingWhileOut())

    # when
    delivery_run(hub_id=first.pk)

    # then: Bea's result is recorded; nothing of Alex came back
    assert not Submission.objects.filter(pk=alex.pk).exists()
    bea.refresh_from_db()
    assert bea.status == SubmissionStatus.DELIVERED
    assert list(AttemptItem.objects.values_list("submission_id", flat=True)) == [bea.pk]
    [attempt] = DeliveryAttempt.objects.all()
    assert "alex" not in json.dumps(attempt.request_body).lower()
    assert DeliveredValue.objects.filter(hub=first).count() == 1
    assert "alex" not in all_stored_text()


def test_only_the_whole_identifier_is_erased(two_hubs):
    first, _ = two_hubs
    receive(first, ALEX)
    receive(first, "alex.wong@example.org")

    with pytest.raises(ErasureInputError):
        person_erase("email", "alex.wong", Hub.objects.all())
    record = person_erase("email", ALEX, Hub.objects.all())

    assert record.counts["summer-comp"]["submissions"] == 1
    assert Submission.objects.get().person.email == "alex.wong@example.org"


@pytest.mark.parametrize("value", ["", "   ", "@", "no-at-sign"])
def test_an_identifier_that_names_nobody_is_refused(two_hubs, value):
    with pytest.raises(ErasureInputError):
        erasure_preview("email", value, Hub.objects.all())


def test_a_phone_is_read_with_each_hubs_region(two_hubs):
    first, second = two_hubs
    receive(first, ALEX, mobile="0412 555 019")
    Hub.objects.filter(pk=second.pk).update(default_phone_region="")
    preview = erasure_preview("phone", "+61 412 555 019", Hub.objects.all())
    assert preview["summer-comp"].submissions >= 1

    record = person_erase("phone", "0412555019", [first])

    assert record.counts["summer-comp"]["submissions"] == preview["summer-comp"].submissions


def test_external_ids_are_matched_trimmed(make_hub):
    hub, _ = make_hub(identity={"type": "external_id", "field": "member_id"})
    receive(hub, ALEX, member_id="M-1001")
    receive(hub, "bea.lim@example.com", member_id="M-10011")

    record = person_erase("external_id", "  M-1001 ", [hub])

    assert record.counts["summer-comp"]["submissions"] == 1
    assert Submission.objects.get().payload["member_id"] == "M-10011"


def test_the_preview_counts_without_erasing(two_hubs):
    first, second = two_hubs
    receive(first, ALEX)
    receive(second, ALEX)

    preview = erasure_preview("email", ALEX, Hub.objects.all())

    assert {slug: counts.submissions for slug, counts in preview.items()} == {
        "summer-comp": 1, "winter-comp": 1,
    }
    assert Submission.objects.count() == 2


def test_a_named_hub_limits_the_erasure(two_hubs):
    first, second = two_hubs
    receive(first, ALEX)
    receive(second, ALEX)

    out = StringIO()
    call_command("erase_person", email=ALEX, hub="winter-comp", interactive=False, stdout=out)

    assert list(Submission.objects.values_list("hub__slug", flat=True)) == ["summer-comp"]
    assert "winter-comp" in out.getvalue() and "alex" not in out.getvalue().lower()
    assert ErasureRecord.objects.get().hub_slugs == ["winter-comp"]


def test_the_command_explains_bad_input(two_hubs):
    with pytest.raises(CommandError, match="whole email"):
        call_command("erase_person", email="alex", interactive=False, stdout=StringIO())
    with pytest.raises(CommandError, match="No hub"):
        call_command("erase_person", email=ALEX, hub="nope", interactive=False, stdout=StringIO())


def test_a_dry_run_erases_nothing(two_hubs):
    first, _ = two_hubs
    receive(first, ALEX)
    out = StringIO()
    call_command("erase_person", email=ALEX, dry_run=True, stdout=out)
    assert Submission.objects.count() == 1 and not ErasureRecord.objects.exists()
    assert "1 submission" in out.getvalue()


# --- Braze /users/delete ----------------------------------------------------------------------


def test_delete_bodies_hold_one_kind_and_at_most_50_identifiers():
    ids = [f"id-{i}" for i in range(120)]
    aliases = [{"alias_name": f"p{i}@example.com", "alias_label": "email"} for i in range(51)]
    bodies = delete_bodies({"external_ids": ids + ids[:5], "user_aliases": aliases})
    assert [(list(body), len(next(iter(body.values())))) for body in bodies] == [
        (["external_ids"], 50), (["external_ids"], 50), (["external_ids"], 20),
        (["user_aliases"], 50), (["user_aliases"], 1),
    ]
    with pytest.raises(ValueError):
        delete_bodies({"emails": ["x"]})


def _raw_tables_text() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM integrations_erasurerecord")
        return json.dumps(cursor.fetchall(), default=str).lower()


def test_braze_is_asked_to_delete_in_batches_of_50(make_hub, sandbox):
    hub, _ = make_hub(endpoint=sandbox.url, identity={"type": "external_id", "field": "member_id"})
    # 120 submissions of one person, each with a different external id (a person whose
    # submissions Komo sent with several ids is still one email)
    for i in range(120):
        receive(hub, ALEX, member_id=f"M-{i}")
    delivery_run(hub_id=hub.pk)
    assert len(sandbox.profiles()) == 120

    record = person_erase("email", ALEX, [hub], braze=True)

    deletes = [r for r in sandbox.requests() if r["path"].endswith("/users/delete")]
    assert [len(r["body"]["external_ids"]) for r in deletes] == [50, 50, 20]
    assert sandbox.profiles() == []
    assert record.braze_outcome == "deleted"
    assert "120" in record.braze_answer
    assert "m-1" not in _raw_tables_text() and "alex" not in _raw_tables_text()


def test_a_key_without_users_delete_is_explained(make_hub, sandbox):
    hub, _ = make_hub(endpoint=sandbox.url)
    receive(hub, ALEX)
    delivery_run(hub_id=hub.pk)
    hub.connection.set_api_key(FORBIDDEN_KEY)
    hub.connection.save()

    record = person_erase("email", ALEX, [hub], braze=True)

    assert record.braze_outcome == "not_permitted"
    assert "users.delete" in record.braze_answer
    assert not Submission.objects.exists()  # the portal's own copy is erased regardless


def test_the_sandbox_refuses_more_than_50_identifiers_or_two_kinds(sandbox):
    client = BrazeClient()
    ids = [f"id-{i}" for i in range(51)]
    too_many = client._post(endpoint=sandbox.url, url=f"{sandbox.url}/users/delete",
                            api_key="sandbox-test-key-0001", body={"external_ids": ids})
    two_kinds = client._post(endpoint=sandbox.url, url=f"{sandbox.url}/users/delete",
                             api_key="sandbox-test-key-0001",
                             body={"external_ids": ["a"], "braze_ids": ["b"]})
    assert (too_many.status_code, two_kinds.status_code) == (400, 400)
    assert "50" in too_many.message

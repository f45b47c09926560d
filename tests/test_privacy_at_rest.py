"""Personal data at rest: encrypted columns, the blind index, and search through it."""

from __future__ import annotations

import json

import pytest
from django.db import connection

from integrations import blind_index
from integrations.fields import is_token
from integrations.models import Submission
from integrations.selectors import submissions_search
from integrations.services.intake import submission_receive
from tests.conftest import komo_entry

pytestmark = pytest.mark.django_db


def _raw(table: str, column: str, pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [pk])  # noqa: S608
        return cursor.fetchone()[0]


def test_the_payload_is_stored_encrypted_and_read_back_as_received(make_hub):
    hub, _ = make_hub()
    body = komo_entry(email="Alex.Wong@Example.com", first_name="Alex")
    text = json.dumps(body)
    stored = submission_receive(hub=hub, payload=body, text=text).submission
    raw = _raw("integrations_submission", "payload", stored.pk)
    assert is_token(raw)
    assert "Alex" not in raw and "example" not in raw.lower()
    assert Submission.objects.get(pk=stored.pk).payload == body


def test_only_keyed_hashes_of_identifiers_are_stored(make_hub):
    hub, _ = make_hub()
    body = komo_entry(email="alex.wong@example.com")
    stored = submission_receive(hub=hub, payload=body).submission
    row = Submission.objects.values("email_hash", "email_local_hash").get(pk=stored.pk)
    assert row["email_hash"] == blind_index.blind_hash("email", "alex.wong@example.com")
    assert row["email_local_hash"] == blind_index.blind_hash("email_local", "alex.wong")
    assert "alex" not in json.dumps(row)


@pytest.mark.parametrize(
    "term",
    ["alex.wong@example.com", "ALEX.WONG@EXAMPLE.COM", " alex.wong@example.com ", "alex.wong",
     "Alex.Wong"],
)
def test_support_finds_an_email_whole_or_by_the_part_before_the_at(make_hub, term):
    hub, _ = make_hub()
    stored = submission_receive(hub=hub, payload=komo_entry(email="Alex.Wong@Example.com"))
    submission_receive(hub=hub, payload=komo_entry(email="someone.else@example.com"))
    found = submissions_search(queryset=Submission.objects.all(), term=term)
    assert [s.public_id for s in found] == [stored.public_id]


@pytest.mark.parametrize("term", ["+61412555019", "+61 412 555 019", "0412 555 019", "0412555019"])
def test_support_finds_a_phone_in_any_format(make_hub, term):
    hub, _ = make_hub(default_phone_region="AU")
    stored = submission_receive(hub=hub, payload=komo_entry(mobile="0412 555 019"))
    other = komo_entry(email="other@example.com", mobile="0412 555 777")
    submission_receive(hub=hub, payload=other)
    found = submissions_search(queryset=Submission.objects.all(), term=term)
    assert [s.public_id for s in found] == [stored.public_id]


def test_support_finds_an_external_id_and_a_komo_id_whole(make_hub):
    hub, _ = make_hub(identity={"type": "external_id", "field": "member_id"})
    stored = submission_receive(hub=hub, payload=komo_entry(member_id=" M-1001 ")).submission
    by_external = submissions_search(queryset=Submission.objects.all(), term="M-1001")
    by_komo = submissions_search(queryset=Submission.objects.all(), term=stored.komo_id)
    assert [s.pk for s in by_external] == [stored.pk]
    assert [s.pk for s in by_komo] == [stored.pk]
    assert not submissions_search(queryset=Submission.objects.all(), term="M-100").exists()


def test_a_row_stored_before_encryption_is_read_from_its_legacy_column(make_hub):
    hub, _ = make_hub()
    stored = submission_receive(hub=hub, payload=komo_entry()).submission
    legacy = {"id": "old", "event": "CompetitionEntrySuccess", "email": "old@example.com"}
    Submission.objects.filter(pk=stored.pk).update(payload=None, payload_legacy=legacy)
    assert Submission.objects.get(pk=stored.pk).payload == legacy


def test_a_changed_value_hash_is_keyed():
    """What skip_unchanged remembers cannot be checked against a guessed value without the key."""
    import hashlib

    from integrations.services.unchanged import value_hash

    unkeyed = hashlib.blake2b(b'"alex@example.com"', digest_size=8).hexdigest()
    assert value_hash("alex@example.com") != unkeyed


def test_long_json_is_compressed_before_it_is_encrypted():
    from integrations.fields import json_open, json_seal

    people = [{"external_id": f"person-{n}", "first_name": "Priya"} for n in range(75)]
    body = {"attributes": people}
    text = json.dumps(body)
    token = json_seal(text)
    assert is_token(token)
    assert len(token) < len(text) / 2  # ciphertext does not compress later, so it is done first
    assert json_open(token) == body
    short = json.dumps({"id": "1"})
    assert json_open(json_seal(short)) == {"id": "1"}


def test_the_preview_of_a_redacted_submission_says_its_data_was_removed(make_hub, admin_client):
    from django.utils import timezone

    hub, _ = make_hub()
    stored = submission_receive(hub=hub, payload=komo_entry()).submission
    Submission.objects.filter(pk=stored.pk).update(payload=None, redacted_at=timezone.now())
    response = admin_client.get(f"/hubs/{hub.slug}/preview/?submission={stored.public_id}")
    assert response.status_code == 200
    assert "personal data was removed after 90 days" in response.content.decode()

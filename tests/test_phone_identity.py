"""People identified by phone (issue 10): one person however the number is typed. The stored
person key, the first-engagement lookup, the support search and the value sent to Braze all use
the E.164 form read in the hub's default phone region."""

from __future__ import annotations

from typing import Any

import pytest

from integrations import blind_index
from integrations.mapping import map_submission
from integrations.models import Submission, SubmissionStatus
from integrations.selectors import submissions_search
from integrations.services.engagement import mapping_contexts
from integrations.services.intake import submission_receive
from integrations.services.unchanged import person_key
from integrations.values import phone_e164
from tests.conftest import komo_entry

SPELLINGS = ["0412 999 888", "+61 412 999 888", "(04) 1299 9888", "+61412999888", " 0412999888 "]
PHONE_IDENTITIES = [
    {"type": "alias_phone", "field": "mobile", "alias_label": "mobile"},
    {"type": "phone", "field": "mobile"},
]


@pytest.mark.parametrize("text", SPELLINGS)
def test_phone_e164_reads_local_numbers_in_the_region(text):
    assert phone_e164(text, "AU") == "+61412999888"
    assert phone_e164(text, " au ") == "+61412999888"


@pytest.mark.parametrize("text", ["", "not a phone", "12", "+999 1", "0412 999 888 777 666"])
def test_phone_e164_is_none_for_what_is_not_a_phone_number(text):
    assert phone_e164(text, "AU") is None


def test_phone_e164_without_a_region_needs_the_plus():
    assert phone_e164("0412 999 888", "") is None
    assert phone_e164("+61 412 999 888", "") == "+61412999888"


def _hub(make_hub, identity: dict[str, Any], **changes):
    mappings = [m for m in _default_mappings() if m["field"] != "mobile"]
    hub, _ = make_hub(identity=identity, mappings=mappings, **changes)
    return hub


def _default_mappings() -> list[dict[str, Any]]:
    from tests.conftest import DEFAULT_CONFIG

    return list(DEFAULT_CONFIG["mappings"])


@pytest.mark.django_db
@pytest.mark.parametrize("identity", PHONE_IDENTITIES, ids=lambda i: i["type"])
def test_two_spellings_of_one_phone_are_one_person_for_first_engagement(make_hub, identity):
    # given a hub keeping first_engaged_at, and a delivered submission typed locally
    hub = _hub(
        make_hub, identity, engagement_attributes={"first_engaged_at": "komo_first_engaged_at"}
    )
    first = submission_receive(hub=hub, payload=komo_entry(mobile="0412 999 888")).submission
    Submission.objects.filter(pk=first.pk).update(status=SubmissionStatus.DELIVERED)
    # when the same person comes back typed internationally
    again = submission_receive(hub=hub, payload=komo_entry(mobile="+61 412 999 888")).submission
    contexts = mapping_contexts(hub=hub, submissions=[again])
    # then it is not a first engagement, so first_engaged_at is not written again
    assert contexts[again.pk].first_engagement is False
    result = map_submission(hub.to_spec(), again.payload, context=contexts[again.pk])
    assert "komo_first_engaged_at" not in result.attributes
    # and both rows carry the same person key
    first.refresh_from_db()
    again.refresh_from_db()
    assert first.phone_hash == again.phone_hash == blind_index.blind_hash("phone", "+61412999888")


@pytest.mark.django_db
@pytest.mark.parametrize("identity", PHONE_IDENTITIES, ids=lambda i: i["type"])
def test_within_one_batch_only_the_earliest_spelling_is_first(make_hub, identity):
    hub = _hub(
        make_hub, identity, engagement_attributes={"first_engaged_at": "komo_first_engaged_at"}
    )
    rows = [
        submission_receive(
            hub=hub, payload=komo_entry(mobile=text, timestamp=f"2026-03-14T09:2{i}:00Z")
        ).submission
        for i, text in enumerate(SPELLINGS[:3])
    ]
    contexts = mapping_contexts(hub=hub, submissions=rows)
    assert [contexts[row.pk].first_engagement for row in rows] == [True, False, False]


@pytest.mark.django_db
def test_text_that_is_not_a_phone_number_is_kept_trimmed(make_hub):
    hub = _hub(make_hub, PHONE_IDENTITIES[0])
    row = submission_receive(hub=hub, payload=komo_entry(mobile="  call me maybe ")).submission
    row.refresh_from_db()
    assert row.phone_hash == blind_index.blind_hash("phone", "")  # no digits: no phone key
    assert submission_receive(hub=hub, payload=komo_entry(mobile="call me")).submission.phone_hash \
        == ""


@pytest.mark.django_db
@pytest.mark.parametrize("term", SPELLINGS)
def test_support_search_finds_a_phone_however_it_is_typed(make_hub, term):
    hub = _hub(make_hub, PHONE_IDENTITIES[1])
    row = submission_receive(hub=hub, payload=komo_entry(mobile="+61 412 999 888")).submission
    other = submission_receive(hub=hub, payload=komo_entry(mobile="0412 111 222")).submission
    found = list(submissions_search(queryset=Submission.objects.all(), term=term))
    assert row in found
    assert other not in found


@pytest.mark.django_db
def test_search_reads_a_local_number_in_each_hubs_own_region(make_hub):
    # A New Zealand hub's "021 234 5678" is +64212345678; the same digits mean nothing in AU.
    nz = _hub(make_hub, PHONE_IDENTITIES[1], slug="nz-comp", default_phone_region="NZ")
    row = submission_receive(hub=nz, payload=komo_entry(mobile="+64 21 234 5678")).submission
    assert list(submissions_search(queryset=Submission.objects.all(), term="021 234 5678")) == [
        row
    ]


@pytest.mark.parametrize("identity", PHONE_IDENTITIES, ids=lambda i: i["type"])
def test_braze_gets_and_skip_unchanged_keys_the_e164_form(identity):
    from integrations.spec import hub_spec_from_config
    from tests.conftest import DEFAULT_CONFIG

    spec = hub_spec_from_config(
        {**DEFAULT_CONFIG, "identity": identity, "mappings": _default_mappings()[:3]}
    )
    keys = set()
    for text in SPELLINGS:
        result = map_submission(spec, komo_entry(mobile=text))
        assert result.identity_value == "+61412999888"
        keys.add(person_key(result.attributes, identity["type"]))
    assert len(keys) == 1

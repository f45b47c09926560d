"""Signed-in staff cannot cause 500s (issue 10): the preview and the hub form's JSON fields refuse
bodies nested too deep (even 100,000 levels, which breaks Python's own parser) and unpaired
surrogates with a message naming the problem; the admin lists refuse lookups that are not their
filters, and a filter value the database cannot use is a page that says so."""

from __future__ import annotations

import json
import re
from html import unescape

import pytest
from django.urls import reverse

from integrations.forms import HubForm
from integrations.models import DeliveryAttempt, Hub, Submission
from integrations.services.intake import MAX_NESTING, submission_receive
from tests.conftest import komo_entry
from tests.test_admin import change_url, hub_form_data, user_create

pytestmark = pytest.mark.django_db

DEEP = '{"a":' * 100_000 + "1" + "}" * 100_000  # 600 kB: under the webhook's size limit
JUST_TOO_DEEP = '{"a":' * (MAX_NESTING + 1) + "1" + "}" * (MAX_NESTING + 1)
SURROGATE_VALUE = '{"event": "CompetitionEntrySuccess", "first_name": "\\ud800"}'
SURROGATE_KEY = '{"\\udfff": {"landing": "event"}}'
NESTED_WORDS = f"nested deeper than {MAX_NESTING} levels"
SURROGATE_WORDS = "unpaired Unicode surrogate"


@pytest.fixture
def staff(client):
    client.force_login(user_create("root", superuser=True))
    return client


@pytest.fixture
def hub(make_hub) -> Hub:
    hub, _ = make_hub()
    return hub


def text_of(response) -> str:
    return unescape(response.content.decode())


# --- preview ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (DEEP, NESTED_WORDS),
        (JUST_TOO_DEEP, NESTED_WORDS),
        (SURROGATE_VALUE, SURROGATE_WORDS),
        ('{"\\ud800": 1}', SURROGATE_WORDS),
        ('{"score": 1e400}', "too large"),
    ],
    ids=["100000-deep", "33-deep", "surrogate-value", "surrogate-key", "infinite"],
)
def test_the_preview_refuses_what_the_webhook_refuses(staff, hub, body, words):
    response = staff.post(reverse("integrations:hub_preview", args=[hub.slug]), {"payload": body})

    assert response.status_code == 400
    assert response.context["preview"] is None
    assert words in text_of(response)


def test_the_preview_still_shows_a_good_body(staff, hub):
    response = staff.post(
        reverse("integrations:hub_preview", args=[hub.slug]), {"payload": json.dumps(komo_entry())}
    )
    assert response.status_code == 200
    assert response.context["preview"].body_json


# --- the hub form's JSON fields ---------------------------------------------------------------

JSON_FIELDS = ["event_rules", "engagement_attributes", "transactional"]


def hub_form(hub: Hub, **changes) -> HubForm:
    data = {
        "name": hub.name, "slug": hub.slug, "identity_type": hub.identity_type,
        "identity_field": hub.identity_field, "alias_label": hub.alias_label,
        "events": "\n".join(hub.events), "create_missing_users": "on",
        "default_phone_region": hub.default_phone_region, **changes,
    }  # fmt: skip
    return HubForm(data=data, instance=hub)


@pytest.mark.parametrize("field", JSON_FIELDS)
@pytest.mark.parametrize(
    ("text", "words"),
    [
        (DEEP, NESTED_WORDS),
        (JUST_TOO_DEEP, NESTED_WORDS),
        (SURROGATE_KEY, SURROGATE_WORDS),
        ('{"CompetitionEntrySuccess": {"event_name": "\\ud800"}}', SURROGATE_WORDS),
    ],
    ids=["100000-deep", "33-deep", "surrogate-key", "surrogate-value"],
)
def test_the_hub_forms_json_fields_refuse_what_cannot_be_stored(hub, field, text, words):
    form = hub_form(hub, **{field: text})

    assert not form.is_valid()
    assert any(words in message for message in form.errors[field]), form.errors
    form.as_div()  # shows the typed text again without parsing it into a crash


@pytest.mark.parametrize("text", [DEEP, SURROGATE_KEY])
def test_the_admin_hub_page_explains_a_bad_json_field(staff, hub, text):
    response = staff.post(change_url(hub), hub_form_data(hub, event_rules=text))

    assert response.status_code == 200
    page = text_of(response)
    assert NESTED_WORDS in page or SURROGATE_WORDS in page
    hub.refresh_from_db()
    assert hub.event_rules == {}


# --- admin lists --------------------------------------------------------------------------------

SUBMISSIONS = "/admin/integrations/submission/"
ATTEMPTS = "/admin/integrations/deliveryattempt/"
CHANGES = "/admin/integrations/configchange/"


@pytest.fixture
def rows(hub):
    submission = submission_receive(hub=hub, payload=komo_entry()).submission
    DeliveryAttempt.objects.create(
        hub=hub, endpoint="https://rest.iad-01.braze.com", request_body={"attributes": []},
        outcome="success",
    )
    return submission


@pytest.mark.parametrize(
    "url",
    [
        SUBMISSIONS + "?payload__regex=(",
        SUBMISSIONS + "?payload__contains=x",
        SUBMISSIONS + "?komo_timestamp__year=99999",
        SUBMISSIONS + "?received_at__year=9999",  # no date hierarchy at volume (admin_paging)
        SUBMISSIONS + "?person_email__regex=(",
        SUBMISSIONS + "?status__regex=(",
        SUBMISSIONS + "?hub__slug__regex=(",
        SUBMISSIONS + "?hub__connection__api_key__startswith=a",
        ATTEMPTS + "?request_body__contains=x",
        ATTEMPTS + "?request_body__regex=(",
        CHANGES + "?summary__regex=(",
        "/admin/integrations/hub/?name__regex=(",
        "/admin/integrations/hubmembership/?user__password__startswith=md5",
    ],
)
def test_admin_lists_refuse_lookups_that_are_not_their_filters(staff, rows, url):
    response = staff.get(url)

    assert response.status_code == 400
    lookup = re.search(r"\?([^=]+)=", url).group(1)
    assert f"cannot be filtered by “{lookup}”" in text_of(response)


@pytest.mark.parametrize(
    "url",
    [
        SUBMISSIONS + "?received_at__gte=not-a-date",
        SUBMISSIONS + "?received_at__gte=99999-01-01",
        CHANGES + "?at__year=9999",  # the hierarchy's next year is 10000
        CHANGES + "?at__year=2026&at__month=13",
    ],
)
def test_filter_values_the_database_cannot_use_are_a_clear_page(staff, rows, url):
    response = staff.get(url)

    assert response.status_code == 400
    page = text_of(response)
    assert "cannot be shown with the filters in this address" in page
    assert "database installation" not in page


def test_a_refused_list_does_not_disturb_the_next_query(staff, rows):
    assert staff.get(SUBMISSIONS + "?received_at__year=9999").status_code == 400
    assert staff.get(SUBMISSIONS).status_code == 200
    assert Submission.objects.count() == 1


@pytest.mark.parametrize("url", [SUBMISSIONS, ATTEMPTS, CHANGES, "/admin/integrations/hub/",
                                 "/admin/integrations/hubmembership/"])
def test_every_filter_the_lists_offer_still_works(staff, rows, url):
    # given every link in the list's filter sidebar and date hierarchy
    page = staff.get(url)
    assert page.status_code == 200
    links = set(re.findall(r'href="(\?[^"]*)"', page.content.decode()))
    assert links
    for link in links:
        # then each answers with the list, and so do their years, months and days
        response = staff.get(url + unescape(link))
        assert response.status_code == 200, link


def test_the_portals_own_list_links_still_work(staff, rows, hub):
    for url in (
        f"{SUBMISSIONS}?hub__id__exact={hub.pk}",
        f"{CHANGES}?hub__id__exact={hub.pk}",
        f"{SUBMISSIONS}?status__exact=failed",
        f"{SUBMISSIONS}?q=someone@example.com",
        f"{CHANGES}?at__year=2026&at__month=3&at__day=14",
        f"{SUBMISSIONS}?o=1",
    ):
        assert staff.get(url).status_code == 200, url


@pytest.mark.parametrize("field", JSON_FIELDS)
@pytest.mark.parametrize("text", ["", "  ", "null"])  # a new hub's form shows "null"
def test_the_hub_forms_empty_json_fields_are_the_defaults(hub, field, text):
    form = hub_form(hub, **{field: text})

    assert form.is_valid(), form.errors
    assert form.cleaned_data[field] == {}

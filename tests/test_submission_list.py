"""Support's submission list in the portal: scoped to the user's hubs, filtered, searched through
the blind index, paged by keyset, masked for health-only members, never the stock admin."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from integrations.models import HubMembership, HubRole, Submission, SubmissionStatus
from integrations.services.intake import submission_receive
from integrations.views_submissions import PAGE_SIZE
from tests.conftest import komo_entry

pytestmark = pytest.mark.django_db
URL = "/submissions/"


def _member(client, hub, role=HubRole.VIEWER, username="support-sam"):
    user = get_user_model().objects.create_user(username=username, password="pw-Secret-123",
                                                is_staff=True)
    HubMembership.objects.create(user=user, hub=hub, role=role)
    client.force_login(user)
    return user


def test_support_sees_their_hubs_submissions_in_the_portal_look(make_hub, client):
    hub, _ = make_hub()
    other, _ = make_hub(slug="other-hub", name="Other hub")
    submission_receive(hub=hub, payload=komo_entry(email="mine@example.com"))
    submission_receive(hub=other, payload=komo_entry(email="theirs@example.com"))
    _member(client, hub)
    page = client.get(URL).content.decode()
    assert "mine@example.com" in page
    assert "theirs@example.com" not in page
    assert "Select submission to view" not in page  # not the stock admin list


def test_search_by_the_part_before_the_at_and_a_local_phone(make_hub, client):
    hub, _ = make_hub()
    submission_receive(hub=hub, payload=komo_entry(email="Alex.Wong@Example.com",
                                                   mobile="0412 555 019"))
    submission_receive(hub=hub, payload=komo_entry(email="someone@example.com",
                                                   mobile="0412 555 777"))
    _member(client, hub)
    for term in ("alex.wong", "+61 412 555 019"):
        page = client.get(URL, {"q": term}).content.decode()
        assert "Alex.Wong@Example.com" in page, term
        assert "someone@example.com" not in page, term


def test_filters_by_hub_status_and_event(make_hub, client):
    hub, _ = make_hub()
    kept = submission_receive(hub=hub, payload=komo_entry(email="failed@example.com")).submission
    submission_receive(hub=hub, payload=komo_entry(email="pending@example.com"))
    Submission.objects.filter(pk=kept.pk).update(status=SubmissionStatus.FAILED)
    _member(client, hub)
    page = client.get(URL, {"hub": hub.slug, "status": "failed",
                            "event": "CompetitionEntrySuccess"}).content.decode()
    assert "failed@example.com" in page
    assert "pending@example.com" not in page


def test_pages_by_keyset_without_a_count(make_hub, client):
    hub, _ = make_hub()
    now = timezone.now()
    for number in range(PAGE_SIZE + 5):
        stored = submission_receive(hub=hub, payload=komo_entry()).submission
        Submission.objects.filter(pk=stored.pk).update(received_at=now - timedelta(minutes=number))
    _member(client, hub)
    with CaptureQueriesContext(connection) as queries:
        first = client.get(URL)
    assert not any("COUNT(" in query["sql"].upper() for query in queries.captured_queries)
    assert first.context["next_url"]
    second = client.get(URL + first.context["next_url"])
    assert len(first.context["rows"]) == PAGE_SIZE
    assert len(second.context["rows"]) == 5
    assert not {s.pk for s in first.context["rows"]} & {s.pk for s in second.context["rows"]}


@pytest.mark.parametrize("query", [{"before": "yesterday"}, {"before": "2026-13-45T00:00,1"},
                                   {"status": "lost"}, {"hub": "not-mine"}])
def test_bad_filters_are_a_clear_400(make_hub, client, query):
    hub, _ = make_hub()
    _member(client, hub)
    response = client.get(URL, query)
    assert response.status_code == 400
    assert b"errorlist" in response.content


def test_health_only_members_see_masked_people_and_no_links(make_hub, client):
    hub, _ = make_hub()
    stored = submission_receive(hub=hub, payload=komo_entry(email="priya@example.com")).submission
    _member(client, hub, role=HubRole.HEALTH)
    page = client.get(URL).content.decode()
    assert "priya@example.com" not in page
    assert "p•••@example.com" in page
    assert str(stored.public_id) not in page


def test_the_dashboard_and_navigation_link_the_portal_list(make_hub, client):
    hub, _ = make_hub()
    _member(client, hub)
    page = client.get(f"/hubs/{hub.slug}/").content.decode()
    assert f"/submissions/?hub={hub.slug}" in page
    assert "/admin/integrations/submission/" not in page

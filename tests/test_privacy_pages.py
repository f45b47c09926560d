"""Personal data in the pages: the access record (written when, and only when, personal data is
shown), masked lists for roles that need none, and erasure in the browser."""

from __future__ import annotations

import pytest
from django.urls import reverse

from integrations.models import AccessRecord, ErasureRecord, HubRole, Submission
from tests.test_views import hub_create, member, submission_create

pytestmark = pytest.mark.django_db

ALEX = "alex.wong@example.com"


@pytest.fixture
def hub():
    return hub_create()


def detail_url(submission: Submission) -> str:
    return reverse("integrations:submission_detail", args=[submission.public_id])


def admin_url(submission: Submission) -> str:
    return reverse("admin:integrations_submission_change", args=[submission.pk])


# --- the access record ------------------------------------------------------------------------


@pytest.mark.parametrize("role", [HubRole.VIEWER, HubRole.EDITOR])
def test_opening_a_submission_writes_who_when_and_which(client, hub, role):
    submission = submission_create(hub, email=ALEX)
    user = member(client, hub, role=role)

    response = client.get(detail_url(submission))

    assert response.status_code == 200 and ALEX in response.content.decode()
    [record] = AccessRecord.objects.all()
    assert (record.user, record.username, record.hub, record.submission_public_id,
            record.page) == (user, "marketer", hub, submission.public_id, "portal")


def test_the_admin_submission_page_writes_an_access_record(client, hub):
    submission = submission_create(hub, email=ALEX)
    member(client, hub, role=HubRole.VIEWER)

    response = client.get(admin_url(submission))

    assert response.status_code == 200
    assert AccessRecord.objects.get().page == "admin"


def test_a_health_member_never_sees_a_submission_and_nothing_is_recorded(client, hub):
    submission = submission_create(hub, email=ALEX)
    member(client, hub, role=HubRole.HEALTH)

    portal = client.get(detail_url(submission))
    admin_page = client.get(admin_url(submission))
    preview = client.get(reverse("integrations:hub_preview", args=[hub.slug]),
                         {"submission": str(submission.public_id)})

    assert (portal.status_code, admin_page.status_code, preview.status_code) == (403, 403, 403)
    assert ALEX not in portal.content.decode() + admin_page.content.decode()
    assert not AccessRecord.objects.exists()


def test_lists_record_nothing_and_mask_people_for_health_members(client, hub):
    submission_create(hub, email=ALEX)
    member(client, hub, role=HubRole.HEALTH)

    pages = [
        client.get(reverse("integrations:hub_dashboard", args=[hub.slug])),
        client.get(reverse("admin:integrations_submission_changelist")),
        client.get(reverse("integrations:hub_preview", args=[hub.slug])),
    ]

    for page in pages:
        html = page.content.decode()
        assert page.status_code == 200
        assert ALEX not in html and "alex.wong" not in html
        assert "a•••@example.com" in html
    assert not AccessRecord.objects.exists()


def test_lists_show_the_person_to_support_without_recording(client, hub):
    submission_create(hub, email=ALEX)
    member(client, hub, role=HubRole.VIEWER)

    dashboard = client.get(reverse("integrations:hub_dashboard", args=[hub.slug]))
    changelist = client.get(reverse("admin:integrations_submission_changelist"))

    assert ALEX in dashboard.content.decode() and ALEX in changelist.content.decode()
    assert not AccessRecord.objects.exists()


def test_previewing_a_picked_submission_is_recorded(client, hub):
    submission = submission_create(hub, email=ALEX)
    member(client, hub, role=HubRole.VIEWER)

    client.get(reverse("integrations:hub_preview", args=[hub.slug]),
               {"submission": str(submission.public_id)})

    assert AccessRecord.objects.get().page == "preview"


def test_only_superusers_list_access_and_erasure_records(client, hub, django_user_model):
    submission = submission_create(hub, email=ALEX)
    member(client, hub, role=HubRole.EDITOR)
    client.get(detail_url(submission))
    for name in ("accessrecord", "erasurerecord"):
        url = reverse(f"admin:integrations_{name}_changelist")
        assert client.get(url).status_code == 403
    admin = django_user_model.objects.create_superuser("root", password="pw-Secret-123")
    client.force_login(admin)
    by_hub = client.get(reverse("admin:integrations_accessrecord_changelist"),
                        {"hub__id__exact": hub.pk})
    assert by_hub.status_code == 200 and str(submission.public_id) in by_hub.content.decode()
    by_user = client.get(reverse("admin:integrations_accessrecord_changelist"),
                         {"user__id__exact": admin.pk})
    assert str(submission.public_id) not in by_user.content.decode()


# --- erasure in the browser -------------------------------------------------------------------


def test_erasure_shows_counts_then_erases_on_confirmation(client, hub):
    other = hub_create(slug="winter-comp")
    submission_create(hub, email=ALEX)
    submission_create(other, email=ALEX)
    submission_create(hub, email="bea.lim@example.com", id="bea-1")
    user = member(client, hub, role=HubRole.VIEWER)
    url = reverse("integrations:person_erase")

    form = client.get(url)
    confirm = client.post(url, {"kind": "email", "value": ALEX})

    assert form.status_code == 200
    assert confirm.status_code == 200
    html = confirm.content.decode()
    assert "summer-comp" in html and "winter-comp" not in html  # only the hubs I support
    assert confirm.context["preview"]["summer-comp"].submissions == 1
    assert Submission.objects.count() == 3  # nothing erased yet

    done = client.post(url, {"kind": "email", "value": ALEX, "confirm": "erase"}, follow=True)

    assert done.status_code == 200
    assert Submission.objects.filter(hub=hub).count() == 1
    assert Submission.objects.filter(hub=other).count() == 1
    record = ErasureRecord.objects.get()
    assert (record.user, record.hub_slugs) == (user, ["summer-comp"])
    assert ALEX not in done.content.decode()


def test_erasure_refuses_odd_input_with_clear_messages(client, hub):
    member(client, hub, role=HubRole.VIEWER)
    url = reverse("integrations:person_erase")

    partial = client.post(url, {"kind": "email", "value": "alex.wong"})
    no_kind = client.post(url, {"kind": "passport", "value": "x"})
    foreign = client.post(url, {"kind": "email", "value": ALEX, "hub": "not-mine"})
    too_long = client.post(url, {"kind": "external_id", "value": "x" * 400})

    for response in (partial, no_kind, foreign, too_long):
        assert response.status_code == 400
    assert "whole email" in partial.content.decode()
    assert not ErasureRecord.objects.exists()


def test_erasure_needs_a_role_with_personal_data_and_csrf(client, hub):
    member(client, hub, role=HubRole.HEALTH)
    assert client.get(reverse("integrations:person_erase")).status_code == 403

    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(member(Client(), hub_create(slug="other"), role=HubRole.EDITOR,
                              username="editor"))
    refused = strict.post(reverse("integrations:person_erase"),
                          {"kind": "email", "value": ALEX, "confirm": "erase"})
    assert refused.status_code == 403
    assert not ErasureRecord.objects.exists()


def test_the_submission_page_links_to_erasing_its_person_prefilled(client, hub):
    submission = submission_create(hub, email=ALEX)
    member(client, hub, role=HubRole.EDITOR)

    page = client.get(detail_url(submission)).content.decode()
    link = f"{reverse('integrations:person_erase')}?submission={submission.public_id}"
    assert link in page
    form = client.get(link).context["form"]

    assert (form.initial["kind"], form.initial["value"], form.initial["hub"]) == (
        "email", ALEX, hub.slug,
    )


def test_someone_elses_erasure_result_is_not_shown(client, hub, django_user_model):
    submission_create(hub, email=ALEX)
    member(client, hub, role=HubRole.EDITOR)
    client.post(reverse("integrations:person_erase"),
                {"kind": "email", "value": ALEX, "confirm": "erase"})
    record = ErasureRecord.objects.get()
    member(client, hub_create(slug="other"), role=HubRole.EDITOR, username="someone")
    assert client.get(reverse("integrations:erasure_result", args=[record.pk])).status_code == 403

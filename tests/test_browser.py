"""The marketer's and support's way through the portal in Debian's Chromium (Playwright).

Screenshots land in test-artifacts/ for a person to look at.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from integrations import tokens
from integrations.braze.client import Outcome, TrackResult
from integrations.models import (
    AttemptItem,
    BrazeConnection,
    DeliveryAttempt,
    FieldMapping,
    Hub,
    HubMembership,
    HubRole,
    ItemResult,
    Submission,
    SubmissionStatus,
)
from integrations.services.intake import person_hash_columns

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
PASSWORD = "demo-Marketer-pw-2026"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's Chromium is not installed at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    # The Playwright loop runs in this thread; Django's ORM calls in the test body are still sync.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1360, "height": 900}, locale="en-GB")
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.console_errors = []
    page.on("console", lambda msg: msg.type == "error" and page.console_errors.append(msg.text))
    page.on("response", lambda r: r.status == 404 and page.console_errors.append(r.url))
    yield page
    context.close()


@pytest.fixture
def braze_accepts(monkeypatch) -> list[dict[str, Any]]:
    """Braze answers 201 success; the live server runs in this process, so the patch reaches it."""
    calls: list[dict[str, Any]] = []

    class Accepting:
        def track(self, *, endpoint: str, api_key: str, body: dict[str, Any]) -> TrackResult:
            calls.append(body)
            return TrackResult(status_code=201, outcome=Outcome.SUCCESS, message="success",
                               response_text='{"message":"success","attributes_processed":1}')

    monkeypatch.setattr("integrations.services.braze_api.braze_client", Accepting)
    return calls


def demo_hub() -> Hub:
    hub = Hub.objects.create(
        slug="autumn-footy", name="Autumn Footy Tipping", active=True,
        komo_site_id="7f1c9a20-2b3d-4e5f-8a6b-9c0d1e2f3a4b", identity_type="alias_email",
        identity_field="email", alias_label="email", default_phone_region="AU",
        events=["CompetitionEntrySuccess"], ingest_token_hint="x7Qa",
    )
    connection = BrazeConnection(hub=hub, rest_endpoint="https://rest.iad-01.braze.com")
    connection.set_api_key("demo-braze-key-0000-1111-2222-9d4e")
    connection.save()
    for position, (field, attribute, value_type) in enumerate((
        ("email", "email", "email"), ("first_name", "first_name", "string"),
        ("last_name", "last_name", "string"), ("mobile", "phone", "phone"),
        ("birthday", "dob", "date"), ("optin", "email_subscribe", "subscription"),
    )):
        FieldMapping.objects.create(hub=hub, position=position, komo_field=field,
                                    attribute=attribute, value_type=value_type)
    return hub


def demo_submissions(hub: Hub) -> Submission:
    """Two delivered entries and one that failed after Braze refused it; returns the failed one."""
    now = timezone.now()
    for index, (name, email) in enumerate((("Priya", "priya@example.com"),
                                           ("Sam", "sam@example.com"))):
        payload = {"id": f"komo-ok-{index}", "event": "CompetitionEntrySuccess",
                   "timestamp": "2026-03-14T09:26:53.589Z", "email": email, "first_name": name,
                   "optin": "true"}
        Submission.objects.create(hub=hub, komo_id=payload["id"], event=payload["event"],
                                  payload=payload, status=SubmissionStatus.DELIVERED,
                                  delivered_at=now, attempts=1,
                                  **person_hash_columns(hub, payload))
    payload = {"id": "komo-failed", "event": "CompetitionEntrySuccess",
               "timestamp": "2026-03-14T09:30:00.000Z", "email": "alex@example.com",
               "first_name": "<script>alert(1)</script>", "mobile": "0412 555 019"}
    failed = Submission.objects.create(
        hub=hub, komo_id=payload["id"], event=payload["event"], payload=payload,
        status=SubmissionStatus.FAILED, attempts=1, **person_hash_columns(hub, payload),
        status_reason="Braze refused the request as invalid (400); it is not retried.",
    )
    attempt = DeliveryAttempt.objects.create(
        hub=hub, endpoint="https://rest.iad-01.braze.com", status_code=400,
        outcome="bad_request", message="Invalid attributes", duration_ms=182,
        request_body={"attributes": [{"user_alias": {"alias_name": "alex@example.com",
                                                     "alias_label": "email"},
                                      "first_name": "<script>alert(1)</script>"}]},
        response_body='{"message": "Invalid attributes"}',
    )
    AttemptItem.objects.create(attempt=attempt, submission=failed, result=ItemResult.FAILED,
                               error="Braze refused the request as invalid (400).")
    return failed


def demo_marketer(hub: Hub) -> str:
    user = get_user_model().objects.create_user(username="demo-marketer", password=PASSWORD,
                                                is_staff=True)
    HubMembership.objects.create(user=user, hub=hub, role=HubRole.EDITOR)
    return user.username


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_marketer_configures_previews_and_support_redelivers(live_server, page, braze_accepts):
    # given
    hub = demo_hub()
    failed = demo_submissions(hub)
    username = demo_marketer(hub)
    base = live_server.url

    # the marketer logs in and sees the hubs at a glance
    page.goto(f"{base}/admin/login/?next=/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/")
    expect(page.locator("table.table").get_by_text("Autumn Footy Tipping")).to_be_visible()
    assert page.locator(".badge--error").count() == 1
    shot(page, "01-hub-list")

    # the admin's hub form still validates like the portal's editors (tests/test_browser_setup.py
    # drives those): instance, write-only key, one mapping
    page.goto(f"{base}/admin/integrations/hub/add/")
    page.locator("#id_name").press_sequentially("Winter Cup")
    assert page.input_value("#id_slug") == "winter-cup"
    page.fill("#id_identity_field", "email")
    page.select_option("#id_connection-0-braze_instance", "https://rest.au-01.braze.com")
    page.fill("#id_connection-0-new_api_key", "winter-braze-key-0000-ab12")
    page.fill("#id_mappings-0-komo_field", "first_name")
    page.fill("#id_mappings-0-attribute", "First_Name")
    page.click("input[name=_continue]")
    expect(page.get_by_text("did you mean “first_name”")).to_be_visible()
    assert "winter-braze-key-0000-ab12" not in page.content()
    shot(page, "02-hub-validation")
    page.fill("#id_mappings-0-attribute", "first_name")
    page.fill("#id_connection-0-new_api_key", "winter-braze-key-0000-ab12")
    page.click("input[name=_continue]")
    expect(page.get_by_text("…ab12", exact=True)).to_be_visible()
    assert Hub.objects.get(slug="winter-cup").connection.api_key_last4 == "ab12"
    shot(page, "03-hub-saved")

    # adds an event to the demo hub; the change is recorded
    page.goto(f"{base}/admin/integrations/hub/{hub.pk}/change/")
    page.fill("#id_events", "CompetitionEntrySuccess\nPrizeAwarded")
    page.click("input[name=_save]")
    expect(page.get_by_text("was changed successfully")).to_be_visible()

    # opens the demo hub's dashboard
    page.goto(f"{base}/hubs/{hub.slug}/")
    expect(page.get_by_role("cell", name="events")).to_be_visible()
    expect(page.get_by_role("heading", name="Braze connection")).to_be_visible()
    expect(page.get_by_text("…x7Qa").first).to_be_visible()
    shot(page, "04-dashboard")

    # previews Komo's sample entry: the exact body, nothing sent
    page.click("text=Preview a submission")
    page.click("text=Komo's sample competition entry")
    body = page.locator("[data-testid=braze-body]")
    assert "alias_name" in body.inner_text()
    assert braze_accepts == []
    shot(page, "05-preview")

    # support opens the failed submission and redelivers it
    page.goto(f"{base}/hubs/{hub.slug}/")
    page.click(f"a[href='/submissions/{failed.public_id}/']")
    assert page.locator("[data-testid=payload]").inner_text().count("<script>alert(1)</script>")
    expect(page.get_by_text("Braze refused the request as invalid (400)").first).to_be_visible()
    shot(page, "06-submission")
    page.click("button:has-text('Redeliver')")
    expect(page.get_by_text("queued for delivery again")).to_be_visible()
    shot(page, "07-redelivered")
    failed.refresh_from_db()
    assert failed.status == SubmissionStatus.DELIVERED  # django-q2 runs in sync mode in tests
    assert len(braze_accepts) == 1

    # the same submission in the admin, as support sees it
    page.goto(f"{base}/admin/integrations/submission/{failed.pk}/change/")
    expect(page.get_by_role("button", name="Redeliver")).to_be_visible()
    shot(page, "08-admin-submission")
    page.goto(f"{base}/admin/integrations/hub/")
    shot(page, "09-admin-hubs")

    # issues an ingest token for the new hub: shown once, stored as a hash
    winter = Hub.objects.get(slug="winter-cup")
    page.check(f"input[name=_selected_action][value='{winter.pk}']")
    page.select_option("select[name=action]", "issue_token")
    page.click("button[name=index]")
    token = page.locator("input.kb-secret").input_value()
    winter.refresh_from_db()
    assert winter.ingest_token_hash == tokens.token_hash(token)
    shot(page, "10-token-issued")
    # then: no script was blocked by the CSP and nothing failed to load
    assert page.console_errors == []

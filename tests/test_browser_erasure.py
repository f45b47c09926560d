"""The erasure journey in a browser: a support person finds a person's submissions, sees the
counts per hub (never the data), erases, and sees the record. At 1366 px and 390 px in English,
German and Japanese; screenshots in test-artifacts/."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from integrations.models import HubMembership, HubRole, Submission
from integrations.services.hubs import hub_config_import, hub_token_issue
from tests.conftest import DEFAULT_CONFIG, komo_entry
from tests.test_browser import ARTIFACTS, PASSWORD, browser  # noqa: F401 (fixture)
from tests.test_browser_health import no_page_scroll

pytestmark = pytest.mark.browser

EMAIL = "erase.me@example.com"


@pytest.mark.parametrize("locale", ["en-GB", "de-DE", "ja-JP"])
@pytest.mark.parametrize("width", [1366, 390])
def test_support_erases_a_person_and_sees_counts_only(
    live_server, browser, width: int, locale: str  # noqa: F811
) -> None:
    hub, _created = hub_config_import(config=dict(DEFAULT_CONFIG))
    token = hub_token_issue(hub=hub)
    user = get_user_model().objects.create_user("support", password=PASSWORD, is_staff=True)
    HubMembership.objects.create(user=user, hub=hub, role=HubRole.VIEWER)
    context = browser.new_context(viewport={"width": width, "height": 900}, locale=locale)
    page = context.new_page()
    page.set_default_timeout(15_000)
    base = live_server.url
    for _ in range(2):
        answer = page.request.post(f"{base}{reverse('hub_submissions', args=[hub.slug])}",
                                   data=komo_entry(email=EMAIL),
                                   headers={"Authorization": f"Bearer {token}"})
        assert answer.status == 202, answer.text()

    page.goto(f"{base}/admin/login/?next={reverse('integrations:person_erase')}")
    page.fill("#id_username", "support")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.fill("#id_value", EMAIL)
    page.click("form.stack button[type=submit]")
    table = page.locator("table.table")
    assert hub.slug in table.inner_text()
    assert EMAIL not in table.inner_text()  # counts, never the person's data
    assert table.locator("td.num").first.inner_text() == "2"
    name = f"erasure-{width}-{locale[:2]}"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}-1-confirm.png"), full_page=True)
    no_page_scroll(page)

    page.click("form:has(input[name=confirm]) button[type=submit]")
    page.wait_for_url("**/erase/*/")
    assert page.locator("table.table td.num").first.inner_text() == "2"
    page.screenshot(path=str(ARTIFACTS / f"{name}-2-result.png"), full_page=True)
    no_page_scroll(page)
    assert not Submission.objects.filter(hub=hub, email_hash__gt="").exists()
    context.close()

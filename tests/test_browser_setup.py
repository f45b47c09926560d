"""Journey: a new marketer sets a hub up from nothing in the portal's editors, without typing
JSON, at 1366 px and 390 px, until a webhook is delivered and in the chart; prints clicks and
time; screenshots in test-artifacts/."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from integrations.models import Hub
from integrations.services.hub_stats import hub_stats_refresh
from tests.conftest import DEMO_KEY, komo_entry
from tests.test_browser import ARTIFACTS, PASSWORD, browser, expect  # noqa: F401 (fixture)

pytestmark = pytest.mark.browser


class Journey:
    def __init__(self, page: Any, name: str) -> None:
        self.page, self.name, self.clicks = page, name, 0

    def click(self, selector: str) -> None:
        self.clicks += 1
        self.page.click(selector)

    def shot(self, step: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"setup-{self.name}-{step}.png"), full_page=True)

    def no_page_scroll(self) -> None:
        width = self.page.evaluate("document.documentElement.scrollWidth")
        assert width <= self.page.viewport_size["width"], (self.page.url, width)


@pytest.mark.parametrize("width", [1366, 390])
def test_new_marketer_sets_a_hub_up_without_json(live_server, browser, sandbox,  # noqa: F811
                                                 width: int) -> None:
    user = get_user_model().objects.create_user("new-marketer", password=PASSWORD, is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="add_hub"))
    context = browser.new_context(viewport={"width": width, "height": 900}, locale="en-GB")
    page = context.new_page()
    page.set_default_timeout(15_000)
    j = Journey(page, str(width))
    base = live_server.url
    started = time.monotonic()

    page.goto(f"{base}/admin/login/?next=/")
    page.fill("#id_username", "new-marketer")
    page.fill("#id_password", PASSWORD)
    j.click("input[type=submit]")
    j.click("text=New hub")
    page.fill("#id_name", f"Spring Cup {width}")
    j.click("button:has-text('Create hub')")
    j.shot("1-checklist")
    j.no_page_scroll()

    j.click("a:has-text('Connect Braze and test the connection')")
    page.select_option("#id_braze_instance", "other")
    page.fill("#id_custom_endpoint", "https://not-allowed.example.com")
    page.fill("#id_api_key", DEMO_KEY)
    j.click("button:has-text('Save')")  # refused endpoint: the key is kept, the summary links
    assert DEMO_KEY not in page.content()
    j.shot("2-connection-error")
    j.no_page_scroll()
    page.fill("#id_custom_endpoint", sandbox.url)
    j.click("button:has-text('Save')")
    j.click("text=Back to the hub")
    j.click("button:has-text('Test connection')")

    j.click("a:has-text('Choose how people are identified')")
    j.click("button:has-text('Save')")
    j.click("a:has-text('Field mappings')")
    page.fill("#id_map-0-komo_field", "email")
    page.fill("#id_map-0-attribute", "email")
    page.select_option("#id_map-0-value_type", "email")
    page.fill("#id_map-1-komo_field", "first_name")
    page.fill("#id_map-1-attribute", "first_name")
    j.shot("3-mappings")
    j.no_page_scroll()
    j.click("button:has-text('Save')")

    j.click(".tabs a:has-text('Event kinds')")
    j.click("a[href$='/events/CompetitionEntrySuccess/']")
    page.select_option("#id_rule-landing", "event")
    j.click("#id_rule-own_properties")
    j.click("button:has-text('Save')")
    page.select_option("#id_card_type", "Survey")
    j.click("button:has-text('Set up this card type')")
    page.select_option("#id_rule-landing", "attributes")
    page.fill("#id_upd-0-attribute", "survey_answers")
    page.select_option("#id_upd-0-mode", "add")
    page.fill("#id_upd-0-field", "answer")
    j.shot("4-survey")
    j.no_page_scroll()
    j.click("button:has-text('Save')")

    j.click(".tabs a:has-text('Transactional emails')")
    j.click("a[href$='/emails/CompetitionEntrySuccess/']")
    page.fill("#id_email-campaign_id", "spring-cup-prize-email")
    j.click("button:has-text('Save')")
    j.click("text=Back to the hub")
    j.click("a:has-text('Preview a submission without problems')")
    j.shot("5-preview")
    page.goto(f"{base}/hubs/spring-cup-{width}/")
    j.click("button:has-text('Issue webhook token')")
    token = page.locator("#token").inner_text().strip()
    assert token
    j.shot("6-token")
    j.click("text=Done: back to the hub")
    j.click("button:has-text('Switch on')")
    j.shot("7-live")

    # Komo posts an entry; it is delivered and, after the worker's minute tick, in the chart
    answer = page.request.post(f"{base}/api/v1/hubs/spring-cup-{width}/submissions",
                               data=komo_entry(), headers={"Authorization": f"Bearer {token}"})
    assert answer.status in (200, 201, 202), answer.text()
    hub_stats_refresh()  # django-q2's schedule runs it every minute
    page.reload()
    expect(page.locator("table.table .status--delivered")).to_have_count(1)
    charts = page.locator("[data-testid=charts]")
    expect(charts.locator("[data-chart=received] rect.chart__s--delivered")).to_have_count(1)
    expect(charts.locator("[data-chart=answers] rect.chart__s--a2xx")).to_have_count(1)
    expect(charts).to_contain_text("1 received, 1 delivered")
    elapsed = time.monotonic() - started
    j.shot("8-delivered-in-the-chart")
    j.no_page_scroll()

    hub = Hub.objects.get(slug=f"spring-cup-{width}")
    assert hub.active and hub.ingest_token_hash and hub.connection.status == "ok"
    assert hub.event_rules["CompetitionEntrySuccess"]["landing"] == "event"
    assert hub.event_rules["CompetitionEntrySuccess"]["card_types"]["Survey"]["landing"] \
        == "attributes"
    assert hub.transactional["CompetitionEntrySuccess"]["campaign_id"] == "spring-cup-prize-email"
    assert "Set-up checklist" not in page.content()
    print(f"\njourney (a) at {width} px: {j.clicks} clicks, {elapsed:.1f} s, no JSON typed")
    context.close()


@pytest.mark.parametrize("language", ["de", "ja"])
def test_editor_pages_in_german_and_japanese(live_server, browser, language: str,  # noqa: F811
                                             django_user_model) -> None:
    from integrations.services.hubs import hub_config_import
    from tests.test_editors import RICH

    hub_config_import(config=RICH)
    django_user_model.objects.create_superuser("boss", password=PASSWORD)
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale=language)
    page = context.new_page()
    page.goto(f"{live_server.url}/admin/login/?next=/")
    page.fill("#id_username", "boss")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.goto(f"{live_server.url}/hubs/rich/edit/events/CompetitionEntrySuccess/")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"setup-rule-{language}.png"), full_page=True)
    page.goto(f"{live_server.url}/hubs/rich/")
    page.screenshot(path=str(ARTIFACTS / f"setup-dashboard-{language}.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366
    context.close()

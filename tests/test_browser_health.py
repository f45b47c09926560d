"""Journey (b): a wrong key. Komo posts, Braze (the sandbox) refuses the key, the connection
pauses; the hub list and the dashboard say Problem with the cause and a link to the fix; the
editor gets one alert mail, the audit log shows it; the marketer fixes the key and all recovers.
At 1366 px and 390 px, screenshots in test-artifacts/."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.urls import reverse

from integrations import tasks
from integrations.models import (
    AuditEvent,
    ConnectionStatus,
    HubMembership,
    HubRole,
    Submission,
    SubmissionStatus,
)
from integrations.services.braze_api import braze_client
from integrations.services.hubs import hub_config_import, hub_token_issue
from tests.conftest import DEFAULT_CONFIG, DEMO_KEY, komo_entry
from tests.test_browser import ARTIFACTS, PASSWORD, browser  # noqa: F401 (fixture)

pytestmark = pytest.mark.browser

WRONG_KEY = "sandbox-key-typed-wrong-0042"


def shot(page: Any, width: int, step: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"health-{width}-{step}.png"), full_page=True)


def no_page_scroll(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    wide = page.evaluate("""() => [...document.querySelectorAll('body *')]
        .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
        .slice(0, 8).map(e => e.tagName + '.' + e.className + ' ' +
                         Math.round(e.getBoundingClientRect().right))""")
    assert width <= page.viewport_size["width"], (page.url, width, wide)


@pytest.mark.parametrize("width", [1366, 390])
def test_a_wrong_key_pauses_the_connection_and_the_pages_say_problem(
    live_server, browser, sandbox, width: int  # noqa: F811
) -> None:
    from django.core.cache import cache

    cache.clear()
    braze_client.cache_clear()
    # given a live hub pointed at the sandbox with a key Braze does not know, and its editor
    config = copy.deepcopy(DEFAULT_CONFIG)
    config["braze"] = {"rest_endpoint": sandbox.url, "api_key": WRONG_KEY}
    hub, _created = hub_config_import(config=config)
    token = hub_token_issue(hub=hub)
    user = get_user_model().objects.create_user("marketer", password=PASSWORD, is_staff=True,
                                                email="marketer@example.com")
    HubMembership.objects.create(user=user, hub=hub, role=HubRole.EDITOR)
    context = browser.new_context(viewport={"width": width, "height": 900}, locale="en-GB")
    page = context.new_page()
    page.set_default_timeout(15_000)
    base = live_server.url

    # when Komo posts an entry (delivered at once: django-q2 runs in sync mode in tests)
    answer = page.request.post(f"{base}{reverse('hub_submissions', args=[hub.slug])}",
                               data=komo_entry(), headers={"Authorization": f"Bearer {token}"})
    assert answer.status in (200, 201, 202), answer.text()
    hub.connection.refresh_from_db()
    assert hub.connection.status == ConnectionStatus.PAUSED
    assert Submission.objects.get(hub=hub).status == SubmissionStatus.PENDING  # nothing lost

    # then the hub list says Problem, with the cause and the way to fix it
    page.goto(f"{base}/admin/login/?next=/")
    page.fill("#id_username", "marketer")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/")
    row = page.locator("tr", has_text="Summer competition")
    assert row.locator(".badge--error").inner_text() == "Problem"
    cause = row.locator("[data-testid=health-cause]")
    assert "Delivery is paused: Braze refused the API key (401)" in cause.inner_text()
    assert cause.locator("a", has_text="Fix the Braze connection").is_visible()
    shot(page, width, "1-hub-list-problem")
    no_page_scroll(page)

    # and so does the dashboard
    page.click("a.strong:has-text('Summer competition')")
    causes = page.locator("[data-testid=health-causes]")
    assert page.locator("#health .badge--error").inner_text() == "Problem"
    assert "Delivery is paused: Braze refused the API key (401)" in causes.inner_text()
    assert "Everything is flowing" not in page.content()
    shot(page, width, "2-dashboard-problem")
    no_page_scroll(page)

    # the every-minute check mails the editor once; the audit log shows the pause and the mail
    tasks.alerts_check()
    tasks.alerts_check()
    assert [m.to for m in mail.outbox] == [["marketer@example.com"]]
    assert "delivery to Braze is paused" in mail.outbox[0].subject
    page.click("a:has-text('Audit log')")
    log = page.locator("[data-testid=audit-log]")
    assert "refused the API key" in log.inner_text()
    page.click("summary:has-text('The mail that went out')")
    assert "Summer competition: delivery to Braze is paused" in log.inner_text()
    shot(page, width, "3-audit-log")
    no_page_scroll(page)

    # when the marketer follows the fix link and types the right key
    page.goto(f"{base}/")
    page.click("[data-testid=health-cause] a:has-text('Fix the Braze connection')")
    page.fill("#id_api_key", DEMO_KEY)
    page.click("button:has-text('Save')")
    page.goto(f"{base}/hubs/{hub.slug}/")
    page.click("button:has-text('Test connection')")

    # then everything recovers: delivered, OK, a recovery mail, all of it in the audit log
    assert Submission.objects.get(hub=hub).status == SubmissionStatus.DELIVERED
    page.goto(f"{base}/hubs/{hub.slug}/")
    assert page.locator("#health .badge--ok").inner_text() == "OK"
    tasks.alerts_check()
    assert "works again" in mail.outbox[-1].subject and len(mail.outbox) == 2
    actions = set(AuditEvent.objects.filter(hub=hub).values_list("action", flat=True))
    assert {"paused", "resumed", "alert-sent", "alert-recovered"} <= actions
    shot(page, width, "4-dashboard-recovered")
    context.close()

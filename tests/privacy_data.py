"""People with distinctive names, put through intake, delivery and transactional email against
the sandbox, so every table that could hold their data has rows (tests of data at rest)."""

from __future__ import annotations

from typing import Any

from integrations.models import Hub, Submission
from integrations.services.delivery import delivery_run
from integrations.services.intake import submission_receive
from integrations.services.transactional import transactional_deliver
from tests.conftest import komo_entry

PEOPLE = (
    {"email": "Zelda.Quackenbush@Example.org", "first_name": "Zelda", "last_name": "Quackenbush",
     "mobile": "0412 555 301", "e164": "+61412555301"},
    {"email": "bartholomew.xylophonides@example.net", "first_name": "Bartholomew",
     "last_name": "Xylophonides", "mobile": "+61 413 555 302", "e164": "+61413555302"},
)

HUB_CHANGES: dict[str, Any] = {
    "events": ["CompetitionEntrySuccess", "PrizeAwarded"],
    "transactional": {"PrizeAwarded": {"campaign_id": "prize-email"}},
}


def plaintexts() -> list[str]:
    """Everything of theirs that must never be readable at rest."""
    texts: list[str] = []
    for person in PEOPLE:
        local = person["email"].split("@")[0]
        texts += [person["email"], local, person["first_name"], person["last_name"],
                  person["mobile"], person["e164"]]
    return texts


def populate(hub: Hub) -> list[Submission]:
    """An entry and a prize per person, delivered to Braze, the prize emails sent."""
    submissions = []
    for person in PEOPLE:
        details = {key: person[key] for key in ("email", "first_name", "last_name", "mobile")}
        for event in ("CompetitionEntrySuccess", "PrizeAwarded"):
            body = komo_entry(event=event, prize_name="First Prize", **details)
            submissions.append(submission_receive(hub=hub, payload=body).submission)
    delivery_run(hub_id=hub.pk)
    transactional_deliver(hub_id=hub.pk)
    return submissions

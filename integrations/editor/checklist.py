"""The set-up checklist a new hub shows on its page until it is live (a read: no writes)."""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from integrations import demo
from integrations.models import ConfigChange, ConnectionStatus, Hub, Submission
from integrations.selectors import submission_preview

# Change-history actions that mean a person chose (or imported) the identity.
IDENTITY_ACTIONS = ("edited-identity", "imported", "import-updated", "changed")


@dataclass(frozen=True)
class Step:
    done: bool
    label: str
    url: str


def hub_setup_steps(hub: Hub) -> list[Step]:
    connection = getattr(hub, "connection", None)
    edit = lambda section: reverse(f"integrations:hub_edit_{section}", args=[hub.slug])  # noqa: E731
    return [
        Step(bool(connection and connection.status == ConnectionStatus.OK),
             _("Connect Braze and test the connection"), edit("connection")),
        Step(ConfigChange.objects.filter(hub=hub, action__in=IDENTITY_ACTIONS).exists(),
             _("Choose how people are identified"), edit("identity")),
        Step(hub.mappings.exists(), _("Map Komo fields to Braze attributes"), edit("mappings")),
        Step(_previews_cleanly(hub), _("Preview a submission without problems"),
             reverse("integrations:hub_preview", args=[hub.slug])),
        Step(bool(hub.ingest_token_hash), _("Issue the webhook token for Komo"), "#hub-actions"),
        Step(hub.active, _("Switch the hub on"), "#hub-actions"),
    ]


def _previews_cleanly(hub: Hub) -> bool:
    """The latest submission (or, before any, Komo's sample entry) maps without a problem."""
    latest = Submission.objects.filter(hub=hub).order_by("-received_at").first()
    payload = latest.payload if latest is not None else demo.sample("competition-entry")
    try:
        result = submission_preview(spec=hub.to_spec(), payload=payload)
    except ValueError:
        return False
    return bool(result["body"]) and not result["problems"] and not result["hold_reason"]

"""``{% hub_setup %}``: the dashboard's set-up checklist and one-click actions (kept apart from
the dashboard template so other parts of the page can change independently)."""

from __future__ import annotations

from typing import Any

from django import template

from integrations.editor.checklist import hub_setup_steps

register = template.Library()


@register.inclusion_tag("integrations/_hub_setup.html", takes_context=True)
def hub_setup(context: dict[str, Any]) -> dict[str, Any]:
    hub = context["hub"]
    steps = hub_setup_steps(hub)
    return {
        "hub": hub,
        "can_edit": context.get("can_edit", False),
        "connection": getattr(hub, "connection", None),
        "steps": steps,
        "steps_done": sum(step.done for step in steps),
        "live": all(step.done for step in steps),
        "csrf_token": context.get("csrf_token"),
    }

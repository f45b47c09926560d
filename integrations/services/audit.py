"""Writes to a hub's audit log: one ``AuditEvent`` per thing that happened to the hub.

Decision (docs/decisions.md, "One audit log per hub"): the log is a table of its own, written by
the services that act (configuration changes, tokens and secrets, connection paused/resumed,
redeliveries, alerts, erasures, backfills), not a read-side union of several tables, so one index
(hub, -at, -id) serves every page and the CSV however the history grows.
"""

from __future__ import annotations

from typing import Any

from integrations.models import AuditEvent, AuditKind, Hub

# Configuration-change actions that are not plain configuration, by their audit kind.
ACTION_KINDS = {
    "token-issued": AuditKind.TOKEN,
    "signing-secret-issued": AuditKind.SECRET,
    "signing-secret-previous-dropped": AuditKind.SECRET,
    "signatures-required": AuditKind.SECRET,
    "signatures-optional": AuditKind.SECRET,
    "redelivered": AuditKind.REDELIVERY,
}


def audit_record(
    *,
    hub: Hub,
    kind: str,
    action: str,
    user: Any = None,
    reason: dict[str, Any] | None = None,
    changes: dict[str, Any] | None = None,
) -> AuditEvent:
    """Record one event. ``reason`` is a reasons.py code with parameters (never personal data
    nor secrets); ``user`` None means the system did it (the worker, a schedule, a command).

    Other features add their events through here (the CSV backfill: kind ``backfill``)."""
    person = user if getattr(user, "pk", None) else None
    return AuditEvent.objects.create(
        hub=hub,
        kind=kind,
        action=action,
        user=person,
        actor=person.get_username() if person else "",
        reason=reason,
        changes=changes or {},
    )


def audit_kind_of(action: str) -> str:
    return ACTION_KINDS.get(action, AuditKind.CONFIG)

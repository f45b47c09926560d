"""Alert mails to a hub's editors: when its connection pauses, when deliveries start failing,
when a backlog is older than 15 minutes, and when each of these recovers.

``alerts_apply`` is called every minute per active hub (tasks.alerts_check, a django-q2
schedule) with the hub's current alert causes (health.py decides them). ``AlertState`` keeps one
row per hub and cause: a mail goes out when a cause starts, unless one went out for it less than
an hour ago (a flapping cause mails once an hour at most), and a recovery mail when it ends
(again at most one an hour). Every mail is written to the hub's audit log with its words' codes,
so the log shows the mail that went out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone, translation

from integrations.alert_words import alert_body, alert_subject
from integrations.health import Cause, cause_sentence
from integrations.models import AlertCause, AlertState, Hub, HubMembership, HubRole
from integrations.reasons import reason
from integrations.services.audit import audit_record

log = logging.getLogger(__name__)

ALERT_EVERY = timedelta(hours=1)


@dataclass
class AlertReport:
    sent: list[tuple[str, str, bool]] = field(default_factory=list)  # (hub slug, cause, recovered)


def hub_editor_emails(hub: Hub) -> list[str]:
    memberships = HubMembership.objects.filter(
        hub=hub, role=HubRole.EDITOR, user__is_active=True
    ).exclude(user__email="").select_related("user")
    return sorted({membership.user.email for membership in memberships})


def alerts_apply(*, hub: Hub, causes: list[Cause], now: datetime | None = None,
                 report: AlertReport | None = None) -> AlertReport:
    """Turn the hub's alert states on and off after its current causes; mail its editors."""
    now = now or timezone.now()
    report = report if report is not None else AlertReport()
    current = {cause.alert: cause for cause in causes if cause.alert}
    with transaction.atomic():
        states = {state.cause: state
                  for state in AlertState.objects.select_for_update().filter(hub=hub)}
        for name in AlertCause.values:
            state = states.get(name)
            if name in current and (state is None or not state.active):
                state = state or AlertState(hub=hub, cause=name)
                state.active, state.since = True, now
                if state.last_sent_at is None or now - state.last_sent_at >= ALERT_EVERY:
                    _mail(hub, name, current[name], recovered=False)
                    state.last_sent_at = now
                    report.sent.append((hub.slug, name, False))
                state.save()
            elif name not in current and state is not None and state.active:
                told = state.last_sent_at is not None and state.last_sent_at >= state.since
                state.active = False
                if told and (state.last_recovery_sent_at is None
                             or now - state.last_recovery_sent_at >= ALERT_EVERY):
                    _mail(hub, name, None, recovered=True)
                    state.last_recovery_sent_at = now
                    report.sent.append((hub.slug, name, True))
                state.save()
    return report


def _mail(hub: Hub, name: str, cause: Cause | None, *, recovered: bool) -> None:
    recipients = hub_editor_emails(hub)
    url = settings.PORTAL_URL + reverse("integrations:hub_dashboard", args=[hub.slug])
    with translation.override(settings.LANGUAGE_CODE):
        subject = alert_subject(name, recovered=recovered, hub_name=hub.name)
        body = alert_body(cause=name, recovered=recovered, hub_name=hub.name, url=url,
                          sentence=cause_sentence(cause) if cause else "")
    if recipients:
        try:
            send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients)
        except OSError:  # SMTP down: logged; the state is kept so it is not retried every minute
            log.exception("alert mail for hub %s (%s) not sent", hub.slug, name)
    audit_record(hub=hub, kind="alert", action="alert-recovered" if recovered else "alert-sent",
                 reason=reason("alert", cause=name, recovered=recovered, hub=hub.name,
                               recipients=len(recipients),
                               sentence=cause_sentence_parts(cause)))


def cause_sentence_parts(cause: Cause | None) -> dict:
    """The cause as stored in the audit log, to word it again in the reader's language."""
    if cause is None:
        return {}
    return {"code": cause.code, "level": cause.level, "params": cause.params}


def alerts_hubs_clear(*, active_hub_ids: set[int]) -> int:
    """Hubs switched off stop alerting: their states end without a recovery mail."""
    return AlertState.objects.filter(active=True).exclude(hub_id__in=active_hub_ids).update(
        active=False
    )

"""The words of alert mails (pure: gettext only), shared by the sender and the audit log,
which shows each mail as it went out."""

from __future__ import annotations

from django.utils.translation import gettext as _


def alert_subject(cause: str, *, recovered: bool, hub_name: str) -> str:
    if recovered:
        return {
            "paused": _("%(hub)s: the Braze connection works again"),
            "failing": _("%(hub)s: deliveries succeed again"),
            "backlog": _("%(hub)s: the backlog is cleared"),
        }.get(cause, _("%(hub)s: recovered")) % {"hub": hub_name}
    return {
        "paused": _("%(hub)s: delivery to Braze is paused"),
        "failing": _("%(hub)s: deliveries to Braze are failing"),
        "backlog": _("%(hub)s: submissions wait longer than 15 minutes"),
    }.get(cause, _("%(hub)s: needs attention")) % {"hub": hub_name}


def alert_body(*, cause: str, recovered: bool, hub_name: str, sentence: str, url: str) -> str:
    lines = [alert_subject(cause, recovered=recovered, hub_name=hub_name), ""]
    if recovered:
        lines.append(_("The problem you were told about has cleared; nothing needs doing."))
    else:
        lines.append(sentence)
        lines += ["", _("Nothing is lost: submissions wait and are delivered once this is "
                        "fixed.")]
    lines += ["", _("Hub dashboard: %(url)s") % {"url": url}, "",
              _("You receive this because you edit this hub. At most one mail per hub and "
                "cause is sent per hour.")]
    return "\n".join(lines)


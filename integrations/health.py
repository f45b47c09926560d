"""Honest health: a hub's figures → the causes that make it Warning or Problem, in words.

Pure (no ORM, no HTTP): ``selectors.hubs_health`` reads the bounded figures, ``health_causes``
decides, ``cause_sentence`` words one cause in the reader's language (pages and alert mails),
``CAUSE_FIXES`` says which page fixes it. One place per rule: the thresholds are here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

BACKLOG_AFTER = timedelta(minutes=15)
# The share of held or failed submissions among the latest SAMPLE received, against the SAMPLE
# before them: "rising" when at least RISING_MIN and RISING_STEP above the earlier share.
SHARE_SAMPLE = 100
RISING_MIN = 0.2
RISING_STEP = 0.1
SHARE_PROBLEM = 0.5
# "Received daily": something arrived in each of this many days before the silent day.
DAILY_DAYS = 3
RETRYABLE = ("server_error", "timeout", "connection_error", "rate_limited")
LEVELS = {"ok": 0, "warning": 1, "error": 2}


@dataclass(frozen=True)
class Cause:
    """One reason the badge is not OK. ``alert`` names the alert it raises ("" = none)."""

    code: str
    level: str  # warning | error
    params: dict[str, Any] = field(default_factory=dict)
    alert: str = ""


@dataclass(frozen=True)
class Figures:
    """What ``health_causes`` needs; counts are capped (selectors.HEALTH_COUNT_CAP)."""

    active: bool
    has_connection: bool
    connection_status: str  # untested | ok | paused ("" without a connection)
    connection_reason: Any  # the stored reason (reasons.py code + params), for the sentence
    connection_reason_text: str  # rows from before codes
    ever_succeeded: bool
    pending: int
    held: int
    failed: int
    received_24h: int
    oldest_due_at: datetime | None
    last_attempt_outcome: str
    last_attempt: dict[str, Any]  # outcome, status_code, message: worded when shown
    recent_sample: int
    recent_problems: int
    earlier_sample: int
    earlier_problems: int
    received_days_before: int  # of the DAILY_DAYS days before the last 24 h, how many had any


def health_causes(figures: Figures, *, now: datetime) -> list[Cause]:
    causes: list[Cause] = []
    if not figures.has_connection:
        causes.append(Cause("no_connection", "warning"))
    elif figures.connection_status == "paused":
        causes.append(Cause("paused", "error", {"reason": figures.connection_reason,
                                                "reason_text": figures.connection_reason_text},
                            alert="paused"))
    elif not figures.ever_succeeded:
        causes.append(Cause("never_succeeded", "warning"))
    if (figures.pending and figures.last_attempt_outcome in RETRYABLE
            and figures.connection_status != "paused"):
        causes.append(Cause("retrying", "warning",
                            {"count": figures.pending, "attempt": figures.last_attempt},
                            alert="failing"))
    if figures.active and figures.oldest_due_at and now - figures.oldest_due_at > BACKLOG_AFTER:
        minutes = int((now - figures.oldest_due_at).total_seconds() // 60)
        causes.append(Cause("backlog", "error", {"minutes": minutes}, alert="backlog"))
    share = _share(figures.recent_problems, figures.recent_sample)
    earlier = _share(figures.earlier_problems, figures.earlier_sample)
    if share >= RISING_MIN and share >= earlier + RISING_STEP:
        causes.append(Cause(
            "problem_share", "error" if share >= SHARE_PROBLEM else "warning",
            {"percent": round(share * 100), "earlier": round(earlier * 100),
             "sample": figures.recent_sample},
            alert="failing",
        ))
    if figures.active and not figures.received_24h and figures.received_days_before >= DAILY_DAYS:
        causes.append(Cause("silent", "warning"))
    if figures.failed:
        causes.append(Cause("failed", "error", {"count": figures.failed}))
    if figures.held:
        causes.append(Cause("held", "warning", {"count": figures.held}))
    return causes


def _attempt_words(attempt: dict[str, Any]) -> str:
    from integrations.explain import outcome_explain

    if not attempt:
        return ""
    return outcome_explain(str(attempt.get("outcome", "")), status_code=attempt.get("status_code"),
                           message=str(attempt.get("message") or ""))


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def health_level(causes: list[Cause]) -> str:
    return max((cause.level for cause in causes), key=LEVELS.__getitem__, default="ok")


def _capped(count: int, cap: int = 1000) -> str:
    return f"{cap}+" if count >= cap else str(count)


def cause_sentence(cause: Cause) -> str:
    """The cause in one plain sentence, in the active language."""
    p = cause.params
    if cause.code == "no_connection":
        return _("No Braze connection yet: nothing can be delivered until one is set up.")
    if cause.code == "paused":
        from integrations.reasons import reason_short

        why = reason_short(p.get("reason"), str(p.get("reason_text") or ""))
        return _("Delivery is paused: %(reason)s") % {"reason": why or _(
            "Braze refused the API key.")}
    if cause.code == "never_succeeded":
        return _("The Braze connection has never worked yet: test it before switching on.")
    if cause.code == "retrying":
        count = int(p.get("count") or 0)
        return ngettext(
            "%(count)s submission waits for a retry. %(words)s",
            "%(count)s submissions wait for a retry. %(words)s", count,
        ) % {"count": _capped(count), "words": _attempt_words(p.get("attempt") or {})}
    if cause.code == "backlog":
        minutes = int(p.get("minutes") or 0)
        return ngettext(
            "Delivery is %(minutes)d minute behind: the oldest waiting submission is overdue.",
            "Delivery is %(minutes)d minutes behind: the oldest waiting submission is overdue.",
            minutes,
        ) % {"minutes": minutes}
    if cause.code == "problem_share":
        return _(
            "%(percent)d%% of the latest %(sample)d submissions were held or failed "
            "(%(earlier)d%% before)."
        ) % {"percent": p.get("percent", 0), "sample": p.get("sample", 0),
             "earlier": p.get("earlier", 0)}
    if cause.code == "silent":
        return _(
            "Nothing arrived from Komo for a day, although submissions arrived every day "
            "before: check the webhook in Komo."
        )
    if cause.code == "failed":
        count = int(p.get("count") or 0)
        return ngettext(
            "%(count)s submission failed and is not retried: look at it and redeliver.",
            "%(count)s submissions failed and are not retried: look at them and redeliver.",
            count,
        ) % {"count": _capped(count)}
    if cause.code == "held":
        count = int(p.get("count") or 0)
        return ngettext(
            "%(count)s submission is held back by a mapping problem.",
            "%(count)s submissions are held back by mapping problems.", count,
        ) % {"count": _capped(count)}
    return cause.code


# Which page fixes each cause: "connection" (the connection editor), "test" (the dashboard's
# connection card), "pending" / "failed" / "held" (the submissions of that status), "webhook".
CAUSE_FIXES = {
    "no_connection": "connection",
    "paused": "connection",
    "never_succeeded": "test",
    "retrying": "pending",
    "backlog": "pending",
    "problem_share": "problems",
    "silent": "webhook",
    "failed": "failed",
    "held": "held",
}


def fix_label(fix: str) -> str:
    return {
        "connection": _("Fix the Braze connection"),
        "test": _("Test the connection"),
        "pending": _("See waiting submissions"),
        "problems": _("See held and failed submissions"),
        "failed": _("See failed submissions"),
        "held": _("See held submissions"),
        "webhook": _("See the webhook settings"),
    }.get(fix, "")

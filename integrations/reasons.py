"""Stored reasons as codes with parameters, put into words in the reader's language when shown.

A reason, a problem or a change summary is written once (by the worker, usually in English) and
read many times in English, German and Japanese. So it is stored as ``{"code": …, "params": …}``
and turned into a sentence by ``reason_text`` at display time. Rows written before codes existed
keep their English text; ``reason_text`` falls back to it.

Lazy messages (``gettext_lazy`` and ``format_lazy`` of them, as the mapping code builds its
problems) are stored by ``message_parts`` as their msgid and parameters and rebuilt in the active
language by ``message_text``. Pure: gettext only, no ORM, no HTTP.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django.utils import translation
from django.utils.functional import Promise
from django.utils.text import format_lazy
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext as _

Reason = dict[str, Any]

_FORMAT = format_lazy("{}", "").__reduce__()[1][0]  # the function format_lazy defers
_GETTEXT = gettext


def reason(code: str, **params: Any) -> Reason:
    """What to store: a code and JSON-safe parameters."""
    return {"code": code, "params": params}


# --- lazy messages ---------------------------------------------------------------------------


def message_parts(message: Any) -> Any:
    """A message as JSON: ``{"msgid": …}`` for gettext_lazy, ``{"format": …, "args", "kwargs"}``
    for format_lazy, the text itself for anything else (a plain str is stored as it is)."""
    if isinstance(message, Promise):
        func, args, kwargs = message.__reduce__()[1][:3]
        if func is _GETTEXT and len(args) == 1:
            return {"msgid": args[0]}
        if func is _FORMAT and args:
            return {
                "format": message_parts(args[0]),
                "args": [message_parts(arg) for arg in args[1:]],
                "kwargs": {key: message_parts(value) for key, value in kwargs.items()},
            }
        return str(message)
    if isinstance(message, str | int | float | bool) or message is None:
        return message
    return str(message)


def message_text(parts: Any) -> str:
    """The message in the active language (the inverse of ``message_parts``)."""
    if isinstance(parts, dict):
        if "msgid" in parts:
            return gettext(str(parts["msgid"]))
        if "format" in parts:
            template = message_text(parts["format"])
            args = [message_text(arg) for arg in parts.get("args") or ()]
            named = parts.get("kwargs") or {}
            kwargs = {key: message_text(value) for key, value in named.items()}
            try:
                return template.format(*args, **kwargs)
            except (IndexError, KeyError, ValueError):
                return template
    return "" if parts is None else str(parts)


# --- reasons ---------------------------------------------------------------------------------


def _braze(params: Mapping[str, Any]) -> str:
    from integrations.explain import outcome_explain

    return outcome_explain(
        str(params.get("outcome", "")),
        status_code=params.get("status_code"),
        message=str(params.get("message") or ""),
    )


def _transactional(params: Mapping[str, Any]) -> str:
    from integrations.explain import transactional_explain

    return transactional_explain(
        str(params.get("outcome", "")), status_code=params.get("status_code"),
        message=str(params.get("message") or ""), not_retried=bool(params.get("not_retried")),
    )


def _held(params: Mapping[str, Any]) -> str:
    return "; ".join(message_text(parts) for parts in params.get("messages") or ())


def _redelivered(params: Mapping[str, Any]) -> str:
    count = int(params.get("count") or 0)
    return ngettext("%(count)d submission queued again", "%(count)d submissions queued again",
                    count) % {"count": count}


def _token_issued(params: Mapping[str, Any]) -> str:
    text = _("ingest token …%(hint)s") % {"hint": params.get("hint", "")}
    if params.get("previous_until"):
        text += "; " + _("the previous token works until %(until)s") % {
            "until": params["previous_until"]
        }
    return text


def _erased(params: Mapping[str, Any]) -> str:
    kinds = {"email": _("an email address"), "phone": _("a phone number"),
             "external_id": _("an external id")}
    count = int(params.get("submissions") or 0)
    text = ngettext(
        "A person was erased (found by %(kind)s): %(count)d submission removed.",
        "A person was erased (found by %(kind)s): %(count)d submissions removed.", count,
    ) % {"kind": kinds.get(str(params.get("kind")), str(params.get("kind", ""))), "count": count}
    if params.get("braze"):
        text += " " + _("Braze deletion: %(outcome)s.") % {"outcome": params["braze"]}
    return text


def _alert(params: Mapping[str, Any]) -> str:
    from integrations.alert_words import alert_subject

    recipients = int(params.get("recipients") or 0)
    text = alert_subject(str(params.get("cause", "")), recovered=bool(params.get("recovered")),
                         hub_name=str(params.get("hub", "")))
    return ngettext("%(subject)s (mailed to %(count)d editor)",
                    "%(subject)s (mailed to %(count)d editors)", recipients) % {
        "subject": text, "count": recipients}


_REASONS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "erased": _erased,
    "alert": _alert,
    "braze": _braze,
    "transactional": _transactional,
    "held": _held,
    "endpoint_refused": lambda p: _(
        "The REST endpoint %(url)s is not an allowed Braze host; nothing was sent."
    ) % {"url": p.get("url", "")},
    "unchanged": lambda p: _(
        "Nothing new to send: Braze already has every value of this submission."
    ),
    "redelivered": _redelivered,
    "token_issued": _token_issued,
    "signing_secret_kept": lambda p: _("new signing secret; the previous one is still accepted"),
    "signing_secret_alone": lambda p: _("new signing secret; no other secret is accepted"),
    "signatures_required": lambda p: _("unsigned webhooks are refused"),
    "signatures_optional": lambda p: _("unsigned webhooks are accepted"),
    "signing_secret_dropped": lambda p: _("the previous signing secret is no longer accepted"),
    "resumed": lambda p: _("The API key or REST endpoint was changed; delivery resumes."),
    "connection_ok": lambda p: _("The connection test succeeded."),
    "message": lambda p: message_text(p.get("message")),
}


def reason_text(data: Any, fallback: str = "") -> str:
    """The stored reason in the active language; ``fallback`` (old rows' text) when no code."""
    if not isinstance(data, dict) or data.get("code") not in _REASONS:
        return fallback
    params = data.get("params") if isinstance(data.get("params"), dict) else {}
    try:
        return _REASONS[data["code"]](params)
    except (KeyError, TypeError, ValueError):
        return fallback


def _short_braze(params: Mapping[str, Any]) -> str:
    short = {
        "unauthorized": lambda: _("Braze refused the API key (401)."),
        "forbidden": lambda: _("The API key lacks the users.track permission (403)."),
        "not_found": lambda: _("The REST endpoint looks wrong (Braze answered 404)."),
        "redirect": lambda: _("The REST endpoint redirects elsewhere."),
    }.get(str(params.get("outcome")))
    return short() if short else _braze(params)


def reason_short(data: Any, fallback: str = "") -> str:
    """The reason in a few words (the badge's cause line); the full text elsewhere."""
    if isinstance(data, dict) and data.get("code") == "braze":
        params = data.get("params") if isinstance(data.get("params"), dict) else {}
        return _short_braze(params)
    if isinstance(data, dict) and data.get("code") == "endpoint_refused":
        return _("The REST endpoint is not an allowed Braze host.")
    return reason_text(data, fallback)


def reason_english(data: Any) -> str:
    """The English sentence, kept beside the code in the old text column (admin search, logs)."""
    with translation.override("en"):
        return reason_text(data)


def reason_known(code: str) -> bool:
    return code in _REASONS


def problems_shown(problems: Any) -> list[dict[str, Any]]:
    """Stored problems with each message in the active language (old rows keep their text)."""
    shown = []
    for problem in problems or ():
        if not isinstance(problem, dict):
            continue
        parts = problem.get("message_parts")
        message = message_text(parts) if parts is not None else problem.get("message", "")
        shown.append({**problem, "message": message})
    return shown

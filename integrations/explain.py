"""Braze's answers in plain words for support staff (translatable; Braze's own text is quoted)."""

from __future__ import annotations

from django.utils.translation import gettext as _

_EXPLANATIONS = {
    "success": lambda: _("Braze accepted the data."),
    "partial": lambda: _("Braze accepted the request but refused some items."),
    "rate_limited": lambda: _(
        "Braze's rate limit for this API key was reached; the data is sent again when the "
        "limit resets."
    ),
    "unauthorized": lambda: _(
        "Braze refused the API key (401): the key is wrong, revoked, or belongs to another Braze "
        "instance than the REST endpoint. Delivery for this connection is paused until the key "
        "or endpoint is fixed; nothing is lost."
    ),
    "forbidden": lambda: _(
        "Braze refused the request (403): the API key lacks the users.track permission or the "
        "account is inactive. Delivery is paused until the key is fixed; nothing is lost."
    ),
    "not_found": lambda: _(
        "Braze answered 404: the REST endpoint looks wrong. Delivery is paused until it is fixed."
    ),
    "redirect": lambda: _(
        "The endpoint answered with a redirect, which is never followed. Delivery is paused "
        "until the REST endpoint is fixed."
    ),
    "bad_request": lambda: _("Braze refused the request as invalid (400); it is not retried."),
    "too_large": lambda: _("The request was larger than Braze accepts (413); it is not retried."),
    "server_error": lambda: _(
        "Braze had a server error; the data is sent again automatically with increasing pauses."
    ),
    "timeout": lambda: _(
        "Braze did not answer in time; the data is sent again automatically (Braze may have "
        "received it, so it can arrive twice)."
    ),
    "connection_error": lambda: _(
        "The connection to Braze failed; the data is sent again automatically."
    ),
}


def outcome_explain(outcome: str, *, status_code: int | None = None, message: str = "") -> str:
    text = _EXPLANATIONS.get(str(outcome), lambda: _("Unexpected answer from Braze."))()
    details = []
    if status_code:
        details.append(f"HTTP {status_code}")
    if message:
        details.append(_("Braze said: “%(message)s”") % {"message": message[:300]})
    return f"{text} ({'; '.join(details)})" if details else text

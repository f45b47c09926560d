"""Braze's answers in plain words for support staff (translatable; Braze's own text is quoted).

When no HTTP answer arrived, the failure is ours (the network between us and Braze): it is named
by what failed (name not found, refused, TLS, timeout) and never quoted as "Braze said".
"""

from __future__ import annotations

import re

from django.utils.translation import gettext as _

# What the Braze client puts before the ":" of a network failure's message, and patterns of
# messages stored before it did (``Connection error: HTTPSConnection(…) [Errno -2] …``).
_FAILURE_PREFIXES = {
    "Name not found": "name_not_found",
    "Connection refused": "refused",
    "Connection reset": "reset",
    "TLS error": "tls",
    "Connect timeout": "connect_timeout",
    "Read timeout": "read_timeout",
}
_FAILURE_PATTERNS = (
    (re.compile(r"Errno -[235]\b|Name or service not known|nodename nor servname|"
                r"Temporary failure in name resolution|NameResolutionError|getaddrinfo failed"),
     "name_not_found"),
    (re.compile(r"(?i)refused"), "refused"),
    (re.compile(r"(?i)reset by peer"), "reset"),
    (re.compile(r"(?i)ssl|certificate|tls"), "tls"),
    (re.compile(r"(?i)not an allowed Braze host"), "endpoint_refused"),
)

_NETWORK = {
    "name_not_found": lambda: _(
        "We could not find the Braze host: its name does not resolve (DNS). Check the REST "
        "endpoint for a typo; the data is sent again automatically."
    ),
    "refused": lambda: _(
        "The Braze host refused our connection. The data is sent again automatically; if this "
        "lasts, check the REST endpoint."
    ),
    "reset": lambda: _(
        "The connection to Braze was cut off before an answer arrived; the data is sent again "
        "automatically."
    ),
    "tls": lambda: _(
        "We could not set up a secure (TLS) connection to the Braze host: its certificate was "
        "not accepted. The data is sent again automatically; check the REST endpoint."
    ),
    "connect_timeout": lambda: _(
        "We could not reach the Braze host in time (connection timeout); the data is sent again "
        "automatically."
    ),
    "read_timeout": lambda: _(
        "Braze did not answer in time; the data is sent again automatically (Braze may have "
        "received it, so it can arrive twice)."
    ),
    "endpoint_refused": lambda: _(
        "The REST endpoint is not an allowed Braze host, so nothing was sent. Fix the REST "
        "endpoint."
    ),
    "not_sent": lambda: _(
        "The request could not be sent (we could not build it); nothing reached Braze."
    ),
    "other": lambda: _(
        "The connection to Braze failed on our side of the network; the data is sent again "
        "automatically."
    ),
}


def network_failure(message: str) -> str:
    """Which step of our network connection failed, from a client message (new or old)."""
    prefix = message.split(":", 1)[0].strip()
    if prefix in _FAILURE_PREFIXES:
        return _FAILURE_PREFIXES[prefix]
    if prefix.startswith("Request not sent") or prefix.startswith("Body is not valid JSON"):
        return "not_sent"
    for pattern, kind in _FAILURE_PATTERNS:
        if pattern.search(message):
            return kind
    return "other"

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
    if not status_code and str(outcome) in ("connection_error", "timeout"):
        kind = network_failure(message or "")
        if str(outcome) == "timeout" and kind not in ("connect_timeout", "read_timeout"):
            kind = "read_timeout"
        return _NETWORK[kind]()
    text = _EXPLANATIONS.get(str(outcome), lambda: _("Unexpected answer from Braze."))()
    details = []
    if status_code:
        details.append(f"HTTP {status_code}")
    if message and status_code:  # without an HTTP answer, Braze said nothing
        details.append(_("Braze said: “%(message)s”") % {"message": message[:300]})
    return f"{text} ({'; '.join(details)})" if details else text


def transactional_explain(outcome: str, *, status_code: int | None = None, message: str = "",
                          not_retried: bool = False) -> str:
    """Braze's answer to a transactional send, in plain words."""
    specific = {
        "unauthorized": lambda: _(
            "Braze refused the API key (401) for the transactional email; it is tried again "
            "later and fails if the key is not fixed."
        ),
        "forbidden": lambda: _(
            "The API key lacks the transactional.send permission (403); the email is tried "
            "again later and fails if the permission is not added."
        ),
        "not_found": lambda: _(
            "Braze answered 404: check the transactional campaign ID; the email is tried again "
            "later and fails if it is not fixed."
        ),
        "timeout": lambda: _(
            "Braze did not answer in time; the email is tried again with the same "
            "external_send_id, so Braze does not send it twice."
        ),
    }.get(str(outcome))
    if specific is None:
        text = outcome_explain(outcome, status_code=status_code, message=message)
    else:
        text = specific()
        details = [f"HTTP {status_code}"] if status_code else []
        if message and status_code:
            details.append(_("Braze said: “%(message)s”") % {"message": message[:300]})
        text = f"{text} ({'; '.join(details)})" if details else text
    if not_retried:
        text = _(
            "%(reason)s Not retried: Braze's 24-hour protection against sending "
            "twice would no longer cover a retry."
        ) % {"reason": text}
    return text

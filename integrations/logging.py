"""Logging that an operator can ship: secrets scrubbed from every line, one JSON object per line
when ``LOG_FORMAT=json``, and each line carrying the request id and the hub it concerns.

Redaction happens twice, so no handler can miss it:

* ``install_redaction()`` makes every ``LogRecord`` scrub its message and traceback when it is
  created, whichever logger made it (Django's ``django.request`` and ``django.server``,
  gunicorn's own handlers, django-q2, libraries) and whichever handler prints it;
* the formatters below scrub the finished line too (a JSON line also holds the record's extra
  attributes, e.g. the request that ``django.request`` attaches).

Scrubbed: the path-token webhook (/api/v1/ingest/<token>), bearer tokens, API keys, ingest tokens
(``kbp_…``) and signing secrets (``kbs_…``) wherever they appear.

No Django here: gunicorn's config imports this module before Django is set up.
"""

from __future__ import annotations

import logging
import re
from contextvars import ContextVar
from typing import Any

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(/api/v1/ingest/)[^/\s?\"'>]+"), r"\1[redacted]"),
    (re.compile(r"(?i)(bearer\s+)[^\s\"',]+"), r"\1[redacted]"),
    (re.compile(r"(?i)(api[_-]?key[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]+"), r"\1[redacted]"),
    (re.compile(r"(?i)(secret[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]+"), r"\1[redacted]"),
    (re.compile(r"\b(kbp_|kbs_)[A-Za-z0-9_\-]{8,}"), r"\1[redacted]"),
)
_FORMATTER = logging.Formatter()


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _redact_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a broken format string: leave it to the handler to report
        return
    cleaned = redact(message)
    if cleaned != message:
        record.msg, record.args = cleaned, None
    if record.exc_info and not record.exc_text:
        record.exc_text = _FORMATTER.formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


class RedactSecretsFilter(logging.Filter):
    """Scrubs a record's message and traceback (also done for every record at creation once
    ``install_redaction()`` ran; kept on the handlers for records made before that)."""

    def filter(self, record: logging.LogRecord) -> bool:
        _redact_record(record)
        return True


_base_factory = logging.getLogRecordFactory()


def _redacting_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record = _base_factory(*args, **kwargs)
    _redact_record(record)
    return record


def install_redaction() -> None:
    """Scrub every log record of this process when it is made, whoever makes it."""
    global _base_factory
    current = logging.getLogRecordFactory()
    if current is not _redacting_factory:
        _base_factory = current
        logging.setLogRecordFactory(_redacting_factory)


# --- request context: the request id and the hub on every line ---------------------------------

_request_id: ContextVar[str] = ContextVar("request_id", default="-")
_hub: ContextVar[str] = ContextVar("hub", default="-")


def context_request_begin(request_id: str) -> None:
    _request_id.set(request_id)
    _hub.set("-")


def context_request_end() -> None:
    _request_id.set("-")
    _hub.set("-")


def context_hub_bind(slug: str) -> None:
    """The hub this request (or task) is about, once it is known (authenticated)."""
    _hub.set(slug)


def context_hub() -> str:
    return _hub.get()


def context_request_id() -> str:
    return _request_id.get()


class RequestContextFilter(logging.Filter):
    """Puts ``request_id`` and ``hub`` on every record ("-" outside a request or before the hub
    is known)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = _request_id.get()
        if not hasattr(record, "hub"):
            record.hub = _hub.get()
        return True


# --- formatters ----------------------------------------------------------------------------------

PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s %(hub)s] %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(hub)s"


class PlainFormatter(logging.Formatter):
    def __init__(self, fmt: str = PLAIN_FORMAT, *args: Any, **kwargs: Any) -> None:
        super().__init__(fmt, *args, **kwargs)

    def format(self, record: logging.LogRecord) -> str:
        record.__dict__.setdefault("request_id", _request_id.get())
        record.__dict__.setdefault("hub", _hub.get())
        return redact(super().format(record))


def json_formatter_class() -> type[logging.Formatter]:
    from pythonjsonlogger.core import RESERVED_ATTRS
    from pythonjsonlogger.json import JsonFormatter

    class RedactingJsonFormatter(JsonFormatter):
        """One JSON object per line: time, level, logger, message, request_id, hub, and any
        ``extra`` fields; the ``request`` object Django attaches is left out (its repr holds the
        path), and the finished line is scrubbed like any other."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("fmt", JSON_FIELDS)
            kwargs.setdefault("rename_fields", {
                "asctime": "time", "levelname": "level", "name": "logger"
            })
            kwargs.setdefault("reserved_attrs", [
                *RESERVED_ATTRS, "request", "server_time", "taskName"
            ])
            super().__init__(*args, **kwargs)

        def format(self, record: logging.LogRecord) -> str:
            record.__dict__.setdefault("request_id", _request_id.get())
            record.__dict__.setdefault("hub", _hub.get())
            return redact(super().format(record))

    return RedactingJsonFormatter


def formatter(log_format: str) -> logging.Formatter:
    """The formatter of ``LOG_FORMAT``: ``json`` or ``plain``."""
    return json_formatter_class()() if log_format == "json" else PlainFormatter()


def JsonFormatterFactory(**kwargs: Any) -> logging.Formatter:  # noqa: N802 (dictConfig "()")
    return json_formatter_class()(**kwargs)


def logging_config(*, log_format: str, level: str) -> dict[str, Any]:
    """Django's ``LOGGING``: one console handler that every logger reaches, scrubbed, plain or
    JSON."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "redact": {"()": "integrations.logging.RedactSecretsFilter"},
            "context": {"()": "integrations.logging.RequestContextFilter"},
        },
        "formatters": {
            "plain": {"()": "integrations.logging.PlainFormatter"},
            "json": {"()": "integrations.logging.JsonFormatterFactory"},
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "json" if log_format == "json" else "plain",
                "filters": ["redact", "context"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # Django's own loggers have handlers of their own by default (mail_admins, the
            # development server's console): send them to ours instead.
            "django": {"handlers": ["console"], "level": level, "propagate": False},
            "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        },
    }


def configure(config: dict[str, Any]) -> None:
    """``LOGGING_CONFIG``: Django's dictConfig, then redaction of every record of the process."""
    import logging.config

    install_redaction()
    logging.config.dictConfig(config)

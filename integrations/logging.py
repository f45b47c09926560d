"""A logging filter that keeps secrets out of every log line.

The path-token webhook (/api/v1/ingest/<token>) would otherwise leak the ingest token through the
access log; Authorization headers and API keys are scrubbed too.
"""

from __future__ import annotations

import logging
import re

_PATTERNS = (
    (re.compile(r"(/api/v1/ingest/)[^/\s?\"']+"), r"\1[redacted]"),
    (re.compile(r"(?i)(bearer\s+)[^\s\"',]+"), r"\1[redacted]"),
    (re.compile(r"(?i)(api[_-]?key[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]+"), r"\1[redacted]"),
)


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True

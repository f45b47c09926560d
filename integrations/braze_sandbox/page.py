"""The ``/_sandbox/`` inspection page: newest requests and profiles first, every value escaped."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Final

from django.core.exceptions import ImproperlyConfigured
from django.utils.html import escape
from django.utils.translation import gettext

_PAGE_REQUESTS: Final = 50
_PAGE_PROFILES: Final = 100


def _(message: str) -> str:
    """``gettext`` that also works when the sandbox runs without Django settings."""
    try:
        return gettext(message)
    except ImproperlyConfigured:
        return message


# --------------------------------------------------------------------------------------------
# Inspection page


def _pretty(value: Any) -> str:
    return escape(json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str))


def _render_request(entry: Mapping[str, Any]) -> str:
    response = entry.get("response") or {}
    errors = response.get("errors") if isinstance(response, dict) else None
    counts = ", ".join(f"{name}: {count}" for name, count in entry.get("counts", {}).items())
    body = entry["body"] if entry.get("body") is not None else entry.get("body_text", "")
    status = entry["status"] if entry["status"] is not None else _("dropped")
    key = f"…{entry['key_last4']}" if entry.get("key_last4") else ""
    notes = "".join(f"<li>{escape(note)}</li>" for note in entry.get("notes", []))
    return (
        f"<tr><td>{escape(entry['time'])}</td><td>{escape(entry['path'])}</td>"
        f"<td>{escape(status)}</td><td>{escape(key)}</td><td>{escape(counts)}</td>"
        f"<td>{_pretty(errors) if errors else ''}<ul>{notes}</ul></td>"
        f"<td><details><summary>{escape(_('body'))}</summary><pre>{_pretty(body)}</pre>"
        f"<pre>{_pretty(response)}</pre></details></td></tr>"
    )


def _render_profile(profile: Mapping[str, Any]) -> str:
    events = [f"{e['time']} {e['name']}" for e in profile["events"][-20:]]
    return (
        f"<tr><td><pre>{_pretty(profile['identifiers'])}</pre></td>"
        f"<td><pre>{_pretty(profile['attributes'])}</pre>"
        f"<pre>{_pretty(profile['subscription_groups'])}</pre></td>"
        f"<td>{'<br>'.join(escape(line) for line in events)}</td>"
        f"<td>{escape(len(profile['purchases']))}</td>"
        f"<td>{escape(profile['updated_at'])}</td></tr>"
    )


def render_page(requests: list[dict[str, Any]], profiles: list[dict[str, Any]]) -> str:
    """The ``/_sandbox/`` page: newest requests and profiles first, every value escaped."""
    request_rows = "".join(_render_request(e) for e in reversed(requests[-_PAGE_REQUESTS:]))
    newest_profiles = sorted(profiles, key=lambda p: p["updated_at"], reverse=True)
    profile_rows = "".join(_render_profile(p) for p in newest_profiles[:_PAGE_PROFILES])
    request_headings = (
        _("Time"),
        _("Path"),
        _("Status"),
        _("Key"),
        _("Objects"),
        _("Errors and notes"),
        "",
    )
    profile_headings = (
        _("Identifiers"),
        _("Attributes"),
        _("Events"),
        _("Purchases"),
        _("Updated"),
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<meta http-equiv='refresh' content='2'>"
        f"<title>{escape(_('Braze sandbox'))}</title>"
        "<style>body{font-family:sans-serif;margin:1em}table{border-collapse:collapse;width:100%}"
        "td,th{border:1px solid #ccc;padding:4px;vertical-align:top;text-align:left}"
        "pre{margin:0;white-space:pre-wrap;max-width:60em}</style></head><body>"
        f"<h1>{escape(_('Braze sandbox'))}</h1>"
        f"<h2>{escape(_('Requests'))} ({len(requests)})</h2>"
        f"{_table(request_headings, request_rows, _('No requests yet.'))}"
        f"<h2>{escape(_('Profiles'))} ({len(profiles)})</h2>"
        f"{_table(profile_headings, profile_rows, _('No profiles yet.'))}"
        "</body></html>"
    )


def _table(headings: Iterable[str], rows: str, empty: str) -> str:
    if not rows:
        return f"<p>{escape(empty)}</p>"
    head = "".join(f"<th>{escape(h)}</th>" for h in headings)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"

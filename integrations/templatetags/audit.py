"""Template filters of the audit log and the change history."""

from __future__ import annotations

from typing import Any

from django import template

from integrations.change_words import change_lines as _change_lines

register = template.Library()


@register.filter
def change_lines(changes: Any) -> list[str]:
    return _change_lines(changes)

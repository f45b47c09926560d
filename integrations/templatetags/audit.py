"""Template filters of the audit log and the change history."""

from __future__ import annotations

from typing import Any

from django import template

from integrations.change_words import action_words as _action_words
from integrations.change_words import change_lines as _change_lines

register = template.Library()


@register.filter
def change_lines(changes: Any) -> list[str]:
    return _change_lines(changes)


@register.filter
def action_words(action: str) -> str:
    return _action_words(action)

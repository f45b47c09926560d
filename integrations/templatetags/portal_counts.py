"""``{{ count|capped }}``: a count that stopped at ``selectors.HEALTH_COUNT_CAP`` reads "1000+"."""

from __future__ import annotations

from typing import Any

from django import template

from integrations import selectors

register = template.Library()


@register.filter
def capped(value: Any) -> str:
    if isinstance(value, int) and value >= selectors.HEALTH_COUNT_CAP:
        return f"{selectors.HEALTH_COUNT_CAP}+"
    return str(value)

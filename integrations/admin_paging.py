"""Admin lists that stay fast with millions of rows (assigned per ModelAdmin with one line each).

* ``CappedPaginator`` counts at most ``max_rows`` rows (``COUNT(*)`` over a LIMITed subquery)
  and clamps page numbers to the pages those rows fill, so neither the paginator's count nor an
  OFFSET is ever larger than ``max_rows``. Older rows are found by filtering (hub, status, date)
  or searching, as support does anyway. Use with ``show_full_result_count = False``.
* ``VisibleHubFilter`` lists the hubs the user may see (a few rows) instead of
  ``RelatedOnlyFieldListFilter``'s ``SELECT DISTINCT hub_id`` over the whole table.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _

from integrations.selectors import hubs_visible_to
from integrations.spec import DOCUMENTED_EVENTS

MAX_ROWS = 10_000


class CappedPaginator(Paginator):
    """A paginator whose count stops at ``max_rows``; ``capped`` says whether more exist."""

    max_rows = MAX_ROWS

    @cached_property
    def count(self) -> int:
        rows = self.object_list
        if isinstance(rows, QuerySet):  # only the ids: annotations of the page are not counted
            found = rows.order_by().values("pk")[: self.max_rows + 1].count()
        else:
            found = len(rows[: self.max_rows + 1])
        self._capped = found > self.max_rows
        return min(found, self.max_rows)

    @property
    def capped(self) -> bool:
        """More rows exist than were counted (the page says "10000+")."""
        return self.count >= self.max_rows and self._capped

    def validate_number(self, number: Any) -> int:
        """Past the last counted page: the last page (never an OFFSET beyond ``max_rows``)."""
        try:
            if int(number) > self.num_pages:
                return self.num_pages
        except (TypeError, ValueError):
            pass
        return super().validate_number(number)


class VisibleHubFilter(admin.SimpleListFilter):
    """Filter by hub, offering the hubs the user may see (not a scan of the listed rows)."""

    title = _("hub")
    parameter_name = "hub__id__exact"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(str(pk), name) for pk, name in
                hubs_visible_to(request.user).order_by("name").values_list("pk", "name")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value and value.isdigit():
            return queryset.filter(hub_id=int(value))
        return queryset


class EventFilter(admin.SimpleListFilter):
    """Filter by Komo event: the kinds Komo documents and those the user's hubs deliver (not a
    ``SELECT DISTINCT event`` over the whole table)."""

    title = _("Komo event")
    parameter_name = "event"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        events = set(DOCUMENTED_EVENTS)
        for configured in hubs_visible_to(request.user).values_list("events", flat=True):
            events.update(str(event) for event in configured or ())
        return [(event, event) for event in sorted(events)]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        return queryset.filter(event=value) if value else queryset

"""Admin change lists that answer a bad query string with a page that says so, never a 500.

Django's admin accepts any ``field__lookup`` on a model's own fields in a list's address
(``ModelAdmin.lookup_allowed`` only checks lookups across relations), so a signed-in person
could run ``?payload__regex=(`` or ``?payload__contains=x`` (no JSON containment on SQLite)
against the database, and values the database cannot use (``?received_at__year=9999``: the
year after is 10000) were 500s. :class:`SafeChangeListMixin` allows only what the list's own
filters and date hierarchy produce, and turns any error while building or showing the list into
a 400 page naming the problem. Add it first in a ModelAdmin's bases.
"""

from __future__ import annotations

import logging
from contextlib import nullcontext
from typing import Any

from django.contrib.admin.exceptions import DisallowedModelAdminLookup
from django.contrib.admin.filters import SimpleListFilter
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ERROR_FLAG, IGNORED_PARAMS, PAGE_VAR
from django.core.exceptions import ValidationError
from django.db import DatabaseError, connections, router, transaction
from django.db.models.constants import LOOKUP_SEP
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _

log = logging.getLogger(__name__)

# What Django's list filters put in the address after a field's path: choices, booleans and
# "all values" use exact/isnull, related filters id__exact, date filters gte/lt.
FILTER_SUFFIXES = frozenset({"", "exact", "isnull", "gte", "lt", "id__exact", "pk__exact"})
# The date hierarchy's own parameters (Django turns them into a gte/lt range).
HIERARCHY_SUFFIXES = frozenset({"year", "month", "day", "gte", "lt"})
NOT_FILTERS = frozenset({*IGNORED_PARAMS, PAGE_VAR, ERROR_FLAG})
TEMPLATE = "admin/integrations/changelist_refused.html"


class _ListNotShown(Exception):
    """Django's IncorrectLookupParameters, taken past its redirect to the misleading
    "Something's wrong with your database installation" page."""


class SafeChangeListMixin:
    def lookup_allowed(self, lookup: str, value: Any, request: HttpRequest | None = None) -> bool:
        if lookup in self._simple_filter_parameters(request):
            return True
        allowed = any(
            _suffix_of(lookup, path) in suffixes
            for path, suffixes in self._filtered_paths(request)
        )
        return allowed and super().lookup_allowed(lookup, value, request)  # type: ignore[misc]

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        try:
            return super().get_changelist_instance(request)  # type: ignore[misc]
        except IncorrectLookupParameters as exc:
            raise _ListNotShown from exc

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None
                        ) -> HttpResponse:
        alias = router.db_for_read(self.model)  # type: ignore[attr-defined]
        # Inside a transaction (ATOMIC_REQUESTS, tests), a savepoint, so that a query the
        # database refused does not break the rest of it; in autocommit nothing is needed (and
        # on SQLite a transaction would take the write lock for a read).
        guard = transaction.atomic(using=alias) if connections[alias].in_atomic_block \
            else nullcontext()
        try:
            # The page is rendered here, where the list's queries run, so their errors are caught.
            with guard:
                response = super().changelist_view(request, extra_context)  # type: ignore[misc]
                if isinstance(response, TemplateResponse):
                    response.render()
            return response
        except DisallowedModelAdminLookup:
            refused = self._refused_lookup(request)
            message = _(
                "This list cannot be filtered by “%(lookup)s”. Use the filters beside the list."
            ) % {"lookup": refused}
        except (_ListNotShown, DatabaseError, ValueError, OverflowError, ValidationError) as exc:
            log.warning("admin list %s not shown: %s", self.opts.label, type(exc).__name__)  # type: ignore[attr-defined]
            message = _(
                "The list cannot be shown with the filters in this address (%(params)s): a value "
                "is not valid for its field or out of range. Remove them and try again."
            ) % {"params": ", ".join(self._filter_keys(request)) or "—"}
        return self._refused_page(request, message)

    # --- helpers ---------------------------------------------------------------------------

    def _list_filters(self, request: HttpRequest | None) -> Any:
        return self.get_list_filter(request) if request is not None else self.list_filter  # type: ignore[attr-defined]

    def _simple_filter_parameters(self, request: HttpRequest | None) -> set[str]:
        return {
            item.parameter_name
            for item in self._list_filters(request)
            if isinstance(item, type) and issubclass(item, SimpleListFilter)
        }

    def _filtered_paths(self, request: HttpRequest | None) -> list[tuple[str, frozenset[str]]]:
        paths = [
            (item[0] if isinstance(item, list | tuple) else item, FILTER_SUFFIXES)
            for item in self._list_filters(request)
            if not isinstance(item, type)
        ]
        paths = [(path, suffixes) for path, suffixes in paths if isinstance(path, str)]
        if self.date_hierarchy:  # type: ignore[attr-defined]
            paths.append((self.date_hierarchy, HIERARCHY_SUFFIXES))  # type: ignore[attr-defined]
        return paths

    @staticmethod
    def _filter_keys(request: HttpRequest) -> list[str]:
        return [key[:100] for key in request.GET if key not in NOT_FILTERS][:10]

    def _refused_lookup(self, request: HttpRequest) -> str:
        for key in self._filter_keys(request):
            for value in request.GET.getlist(key):
                if not self.lookup_allowed(key, value, request):
                    return key
        return ", ".join(self._filter_keys(request))

    def _refused_page(self, request: HttpRequest, message: str) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),  # type: ignore[attr-defined]
            "opts": self.opts,  # type: ignore[attr-defined]
            "title": _("This list cannot be shown"),
            "message": message,
            "list_url": request.path,
        }
        return TemplateResponse(request, TEMPLATE, context, status=400)


def _suffix_of(lookup: str, path: str) -> str | None:
    """What follows the field path in a lookup ("" for the path itself), or None."""
    if lookup == path:
        return ""
    if lookup.startswith(path + LOOKUP_SEP):
        return lookup[len(path) + len(LOOKUP_SEP):]
    return None

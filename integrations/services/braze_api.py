"""The one Braze client of the process, shared by delivery, transactional sends and the
connection test.

It lives here, apart from ``delivery`` and ``transactional``, so both can use it without
importing each other. Callers look it up as ``braze_api.braze_client()`` at call time, so a test
replaces it in one place (``integrations.services.braze_api.braze_client``).
"""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings

from integrations.braze.client import BrazeClient
from integrations.braze.instances import endpoint_allowed


@lru_cache(maxsize=1)
def braze_client() -> BrazeClient:
    return BrazeClient(
        connect_timeout=settings.BRAZE_CONNECT_TIMEOUT_SECONDS,
        read_timeout=settings.BRAZE_TIMEOUT_SECONDS,
        endpoint_guard=lambda url: endpoint_allowed(url, settings.BRAZE_EXTRA_ENDPOINTS),
    )

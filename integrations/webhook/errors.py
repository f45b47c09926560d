"""The webhook's answers beyond DRF's own exceptions. Every one is rendered by DRF's exception
handler as ``{"detail": "<the problem>"}``; ``wait`` becomes ``Retry-After``."""

from __future__ import annotations

import logging

from django.db import DatabaseError
from django.utils.translation import gettext as _
from rest_framework import status
from rest_framework.exceptions import APIException

log = logging.getLogger("integrations.apis")

UNAVAILABLE_RETRY_SECONDS = 5


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(_("The body is larger than %(limit)d bytes.") % {"limit": limit})


class RateLimited(APIException):
    """Over the hub's intake limit (not DRF's ``Throttled``, whose message would be appended)."""

    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "throttled"

    def __init__(self, wait: int) -> None:
        super().__init__(
            _("More webhooks than this hub accepts per minute; retry after %(seconds)d s.")
            % {"seconds": wait}
        )
        self.wait = wait


class Unavailable(APIException):
    """The database is unavailable: the sender should retry (only then can a retry succeed)."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "unavailable"
    wait = UNAVAILABLE_RETRY_SECONDS

    def __init__(self, exc: DatabaseError) -> None:
        log.error("webhook intake: database unavailable: %s", type(exc).__name__)
        super().__init__(_("Temporarily unavailable, please retry."))

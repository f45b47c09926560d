"""Settings for ``make bench``: production settings plus the bench-only ceiling endpoints.

The ceilings (``/bench/bare`` and ``/bench/insert``) are served by the same gunicorn, middleware and
database as the real webhook, but they exist only in this URLconf, never in ``portal.urls``.
"""

from portal.settings import *  # noqa: F403

ROOT_URLCONF = "tests.bench.urls"
# The ceilings take the webhook's path through the middleware, so the comparison is like for like.
INTAKE_PATH_PREFIXES = [*INTAKE_PATH_PREFIXES, "/bench/"]  # noqa: F405

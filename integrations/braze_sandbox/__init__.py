"""The Braze sandbox: a local Braze look-alike for development, tests, faults and the bench.

Tooling, not production: only the ``braze_sandbox`` management command and the tests import it;
the production client is ``integrations.braze``.
"""

from integrations.braze_sandbox.server import *  # noqa: F403
from integrations.braze_sandbox.server import __all__  # noqa: F401

"""``python -m tests.faults.probe qcluster``: ``manage.py`` with the delivery worker instrumented.

While a worker process is between claiming a batch and recording Braze's answer (mapping, the
HTTP request, the result transaction), a file named after its pid exists in
``$FAULTS_PROBE_DIR``. The fault runner SIGKILLs exactly such a process, so every kill lands in
the middle of a batch. Nothing else changes: the wrapper calls the original function.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from pathlib import Path
from typing import Any


def _instrument(probe_dir: Path) -> None:
    from integrations.services import delivery

    original = delivery._deliver_claimed

    @functools.wraps(original)
    def marked(*args: Any, **kwargs: Any) -> Any:
        marker = probe_dir / str(os.getpid())
        marker.write_text(str(time.time()))
        try:
            return original(*args, **kwargs)
        finally:
            marker.unlink(missing_ok=True)

    delivery._deliver_claimed = marked


def main(argv: list[str]) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings_test")
    import django

    django.setup()
    probe_dir = os.environ.get("FAULTS_PROBE_DIR")
    if probe_dir:
        Path(probe_dir).mkdir(parents=True, exist_ok=True)
        _instrument(Path(probe_dir))
    from django.core.management import execute_from_command_line

    execute_from_command_line(["manage.py", *argv])


if __name__ == "__main__":
    main(sys.argv[1:])

"""Fault injection for the portal: ``make faults`` (``python -m tests.faults.run``) and the smaller
pytest versions in ``tests/test_faults.py`` share these modules.

* ``scenarios``: one function per fault (worker SIGKILL mid-batch, a flaky Braze, a long outage,
  a 401 mid-drain, the database gone during intake, two web processes and two clusters), each
  returning the figures of the closing table.
* ``harness``: processes (qcluster, gunicorn), the simulated clock, a TCP proxy that can cut the
  database off, counting what Braze received.
* ``probe``: ``python -m tests.faults.probe qcluster`` marks the worker in the middle of a batch,
  so the SIGKILL lands there (instrumentation only, no behaviour change).
* ``pages``: every page a signed-in person can reach (escaping, CSRF and secrets tests).
* ``report``: the closing table and the figures each test records.
"""

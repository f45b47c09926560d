"""Time from the webhook POST to the profile appearing in the Braze sandbox, against a running
portal (e.g. `make run`). Prints the median and p95 of N sequential submissions.

    python -m tests.bench.e2e_latency --token kbp_… [--count 20] \
        [--portal http://127.0.0.1:8000 --sandbox http://127.0.0.1:9400 --slug autumn-footy]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from pathlib import Path

import requests

SAMPLE = Path(__file__).resolve().parents[2] / "integrations/demo/samples/competition-entry.json"


def measure(portal: str, sandbox: str, slug: str, token: str, count: int) -> list[float]:
    session = requests.Session()
    base = json.loads(SAMPLE.read_text())
    timings = []
    for _ in range(count):
        email = f"bench-{uuid.uuid4().hex[:12]}@example.com"
        payload = {**base, "id": str(uuid.uuid4()), "email": email}
        started = time.perf_counter()
        response = session.post(
            f"{portal}/api/v1/hubs/{slug}/submissions",
            json=payload,
            timeout=10,
            headers={"Authorization": f"Bearer {token}"},
        )
        response.raise_for_status()
        while True:
            profiles = session.get(f"{sandbox}/_sandbox/api/profiles", timeout=10).json()
            if any(p["identifiers"].get("email") == email for p in profiles):
                break
            if time.perf_counter() - started > 30:
                raise TimeoutError(email)
            time.sleep(0.01)
        timings.append(time.perf_counter() - started)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--portal", default="http://127.0.0.1:8000")
    parser.add_argument("--sandbox", default="http://127.0.0.1:9400")
    parser.add_argument("--slug", default="autumn-footy")
    parser.add_argument("--token", required=True)
    parser.add_argument("--count", type=int, default=20)
    args = parser.parse_args()
    timings = measure(args.portal, args.sandbox, args.slug, args.token, args.count)
    ordered = sorted(timings)
    median = statistics.median(timings) * 1000
    p95 = ordered[int(0.95 * (len(ordered) - 1))] * 1000
    print(
        f"curl → sandbox profile, n={len(timings)}: median {median:.0f} ms, "
        f"p95 {p95:.0f} ms, max {ordered[-1] * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()

"""Profiling a running process tree with py-spy, summarised as the top frames of our code."""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from pathlib import Path

from tests.bench.stack import VENV_BIN

# Our own code: each sample is charged to its innermost frame of our code (with what it called).
OURS = re.compile(r"\((integrations|portal)/")
PACKAGE = re.compile(r"\(([A-Za-z_]+)[/.]")


def record(pid: int, seconds: float, output: Path) -> subprocess.Popen[bytes] | None:
    """Start sampling ``pid`` and its children (only samples holding the GIL: Python CPU)."""
    spy = VENV_BIN / "py-spy"
    if not spy.exists():
        return None
    return subprocess.Popen(  # noqa: S603
        [
            str(spy),
            "record",
            "--pid",
            str(pid),
            "--subprocesses",
            "--gil",
            "--nonblocking",
            "--rate",
            "200",
            "--duration",
            str(max(1, int(seconds))),
            "--format",
            "raw",
            "--output",
            str(output),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _samples(raw: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append(([re.sub(r":\d+\)$", ")", f) for f in stack.split(";")], int(count)))
    return stacks


def summarise(raw: Path, top: int = 8) -> tuple[list[tuple[float, str]], list[tuple[float, str]]]:
    """Our functions by the share of samples whose innermost frame of our code they are (their
    own time and that of the libraries they call, not of our functions they call: where the
    webhook's own work goes), and all samples' own time by package (where the innermost frame
    is: django, psycopg, redis, gunicorn, …)."""
    if not raw.exists():
        return [], []
    innermost: Counter[str] = Counter()
    by_package: Counter[str] = Counter()
    total = 0
    for frames, samples in _samples(raw):
        total += samples
        ours = [frame for frame in frames if OURS.search(frame)]
        if ours:
            innermost[ours[-1]] += samples
        package = PACKAGE.search(frames[-1])
        by_package[package.group(1) if package else "other"] += samples
    if not total:
        return [], []
    ours = [(100.0 * n / total, frame) for frame, n in innermost.most_common(top)]
    packages = [(100.0 * n / total, name) for name, n in by_package.most_common(top)]
    return ours, packages

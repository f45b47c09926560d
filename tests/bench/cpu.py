"""CPU time by role (web, workers, PostgreSQL, Redis, sandbox, load client, everything else), read
from /proc, so the bench can say where the two cores went and whether anything else ran."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.bench.stack import descendants

TICK = os.sysconf("SC_CLK_TCK")


def _process_cpu() -> dict[int, tuple[str, float]]:
    """(command name, CPU seconds) of every process."""
    found: dict[int, tuple[str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        found[int(entry.name)] = (name, (int(fields[11]) + int(fields[12])) / TICK)
    return found


def _machine_busy() -> float:
    """CPU seconds the whole machine has been busy (all cores) since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(values) - values[3] - values[4]) / TICK


@dataclass
class Usage:
    seconds: float = 0.0  # wall time measured
    by_role: dict[str, float] = field(default_factory=dict)  # CPU seconds

    def per(self, count: int) -> dict[str, float]:
        """CPU milliseconds per unit of work, by role."""
        return {role: 1000 * cpu / count for role, cpu in self.by_role.items()} if count else {}

    def cores(self) -> dict[str, float]:
        return (
            {role: cpu / self.seconds for role, cpu in self.by_role.items()} if self.seconds else {}
        )


class CpuMeter:
    """Attributes CPU time to the bench's roles; ``roles`` maps a role to its root process ids."""

    def __init__(self) -> None:
        self.roots: dict[str, list[int]] = {"client": [os.getpid()]}
        self.total = Usage()

    def role_pids(self) -> dict[int, str]:
        owner: dict[int, str] = {}
        for role, roots in self.roots.items():
            for root in roots:
                for pid in (root, *([] if role == "client" else descendants(root))):
                    owner[pid] = role
        return owner

    def _role(self, pid: int, name: str, owner: Mapping[int, str]) -> str:
        if pid in owner:
            return owner[pid]
        if name == "postgres":
            return "postgres"
        if name.startswith("redis-server"):
            return "redis"
        return "other"

    @contextmanager
    def measure(self) -> Iterator[Usage]:
        usage = Usage()
        before, busy_before, started = _process_cpu(), _machine_busy(), time.monotonic()
        try:
            yield usage
        finally:
            after, busy_after = _process_cpu(), _machine_busy()
            usage.seconds = time.monotonic() - started
            owner = self.role_pids()
            counted = 0.0
            for pid, (name, cpu) in after.items():
                spent = cpu - before.get(pid, (name, 0.0))[1]
                if spent > 0:
                    role = self._role(pid, name, owner)
                    usage.by_role[role] = usage.by_role.get(role, 0.0) + spent
                    counted += spent
            # CPU of processes that ended during the measurement (and kernel threads) is "other".
            missing = (busy_after - busy_before) - counted
            if missing > 0:
                usage.by_role["other"] = usage.by_role.get("other", 0.0) + missing
            self._add(usage)

    def _add(self, usage: Usage) -> None:
        self.total.seconds += usage.seconds
        for role, cpu in usage.by_role.items():
            self.total.by_role[role] = self.total.by_role.get(role, 0.0) + cpu

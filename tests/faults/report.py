"""Figures: what each fault, fuzz and secrets run measured, and the closing table.

Tests record their figures with ``figures_record``: they are printed in pytest's summary (no
``-s`` needed) and written to ``test-artifacts/figures/<name>.json`` (or ``$FAULTS_FIGURES_DIR``),
where ``python -m tests.faults.run`` collects them into one table.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]
PLUGIN_NAME = "komo-figures-summary"


def figures_dir() -> Path:
    return Path(os.environ.get("FAULTS_FIGURES_DIR") or BASE_DIR / "test-artifacts" / "figures")


@dataclass
class FaultRow:
    """One line of the closing table."""

    fault: str
    injected: int = 0
    sent: int = 0
    delivered: int = 0
    lost: int = 0
    duplicated: int = 0
    failed: int = 0
    notes: dict[str, Any] = field(default_factory=dict)
    ok: bool = True
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _SummaryPlugin:
    def __init__(self) -> None:
        self.rows: dict[str, Mapping[str, Any]] = {}

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.rows:
            return
        terminalreporter.section("figures")
        for name, figures in self.rows.items():
            terminalreporter.write_line(f"{name}: {json.dumps(figures, default=str)}")


def figures_record(config: pytest.Config | None, name: str, figures: Mapping[str, Any]) -> None:
    """Keep ``figures`` under ``name``: in pytest's summary and as a JSON file."""
    directory = figures_dir()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.json").write_text(json.dumps(figures, indent=2, default=str))
    if config is None:
        return
    plugin = config.pluginmanager.get_plugin(PLUGIN_NAME)
    if plugin is None:
        plugin = _SummaryPlugin()
        config.pluginmanager.register(plugin, PLUGIN_NAME)
    plugin.rows[name] = figures


def figures_load(name: str) -> dict[str, Any] | None:
    path = figures_dir() / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


# --- the table ----------------------------------------------------------------------------------

COLUMNS: Sequence[tuple[str, str]] = (
    ("fault", "fault"),
    ("injected", "faults injected"),
    ("sent", "sent"),
    ("delivered", "delivered"),
    ("lost", "lost"),
    ("duplicated", "duplicated"),
    ("failed", "failed"),
    ("seconds", "s"),
    ("result", "result"),
)


def _cell(row: Mapping[str, Any], key: str) -> str:
    if key == "result":
        return "ok" if row.get("ok") else "FAILED"
    value = row.get(key, "")
    if isinstance(value, float):
        return f"{value:.0f}"
    return str(value)


def table(rows: Iterable[Mapping[str, Any]]) -> str:
    """A plain-text table (also valid Markdown) of the fault rows, then their notes."""
    rows = list(rows)
    header = [title for _key, title in COLUMNS]
    body = [[_cell(row, key) for key, _title in COLUMNS] for row in rows]
    widths = [max(len(cells[i]) for cells in [header, *body]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    out = [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(cells) for cells in body]
    notes = [f"- {row['fault']}: " + ", ".join(f"{k} {v}" for k, v in row["notes"].items())
             for row in rows if row.get("notes")]
    return "\n".join(out + ([""] + notes if notes else []))


def totals(rows: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    rows = list(rows)
    return {key: sum(int(row.get(key, 0)) for row in rows)
            for key in ("injected", "sent", "delivered", "lost", "duplicated", "failed")}

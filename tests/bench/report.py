"""The bench's one table: measure, figure, target, met."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    measure: str
    figure: str
    target: str = ""
    met: bool | None = None  # None: no target (context figure)


def _mark(met: bool | None) -> str:
    return "" if met is None else ("yes" if met else "NO")


def print_table(rows: list[Row]) -> None:
    headings = ("measure", "figure (this run)", "target", "met")
    cells = [headings, *((r.measure, r.figure, r.target, _mark(r.met)) for r in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(4)]
    line = "+".join("-" * (w + 2) for w in widths)
    print()
    for index, row in enumerate(cells):
        print(" | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if index == 0:
            print(line)
    met = [r.met for r in rows if r.met is not None]
    print(f"\ntargets met: {sum(met)} of {len(met)}")

"""The per-layer numbers of a run as terminal tables, for `cliffscope runs show`.

The rows come from `report.tables` (the same rows the Markdown, CSV and JSON exports use),
so the terminal can never disagree with a report.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table

from cliffscope.report import tables


def _num(value: float | None, fmt: str = ".3f") -> str:
    return "-" if value is None else format(value, fmt)


def sweep_table(result: dict[str, Any]) -> Table | None:
    """Score per truncation layer k with its paired interval, flips and savings."""
    rows = tables.sweep_rows(result)
    if not rows:
        return None
    base = tables.baseline(result) or {}
    cliff = (result.get("cliff") or {}).get("layer")
    table = Table(box=None, pad_edge=False, header_style="bold")
    for name in ("k", "score", "Δ vs base", "95% interval", "→wrong", "→right", "FLOPs saved"):
        table.add_column(name, justify="right")
    for row in rows:
        marker = " ◀ cliff" if row["k"] == cliff else ""
        table.add_row(
            f"{row['k']}{marker}",
            _num(row["score"]),
            _num(row["delta"], "+.3f"),
            f"[{_num(row['lo'], '+.3f')}, {_num(row['hi'], '+.3f')}]",
            "-" if row["flips_to_wrong"] is None else str(row["flips_to_wrong"]),
            "-" if row["flips_to_right"] is None else str(row["flips_to_right"]),
            _num(row["flops_saved"], ".0%"),
        )
    table.add_row("base", _num(base.get("score")), "", "", "", "", "")
    return table


def flow_table(result: dict[str, Any], measure: str = "mass") -> Table | None:
    """Mean attention mass per layer and group (the flow curves as numbers)."""
    if not tables.has_flow(result):
        return None
    names = tables.groups(result)
    series = {g: tables.flow_series(result, measure, g)["mean"] for g in names}
    cliff = (result.get("cliff") or {}).get("layer")
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("layer", justify="right")
    for name in names:
        table.add_column(name, justify="right")
    for layer in range(tables.flow_layers(result)):
        marker = " ◀ cliff" if layer == cliff else ""
        table.add_row(f"{layer}{marker}", *(_num(series[g][layer]) for g in names))
    return table

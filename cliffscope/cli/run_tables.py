"""The per-layer numbers of a run as terminal tables, for `cliffscope runs show`.

The rows come from `report.tables` (the same rows the Markdown, CSV and JSON exports use),
so the terminal can never disagree with a report.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table

from cliffscope.report import tables
from cliffscope.vocab import MISSING, finite, fmt, fmt_int, fmt_pct, fmt_signed


def _signed_interval(lo: float | None, hi: float | None) -> str:
    if finite(lo) is None or finite(hi) is None:
        return MISSING
    return f"[{fmt_signed(lo, 3)}, {fmt_signed(hi, 3)}]"


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
            fmt(row["score"], 3),
            fmt_signed(row["delta"], 3),
            _signed_interval(row["lo"], row["hi"]),
            fmt_int(row["flips_to_wrong"]),
            fmt_int(row["flips_to_right"]),
            fmt_pct(row["flops_saved"], 0),
        )
    table.add_row("base", fmt(base.get("score"), 3), "", "", "", "", "")
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
        table.add_row(f"{layer}{marker}", *(fmt(series[g][layer], 3) for g in names))
    return table

"""The Sweep tab: score against k with the baseline and both cliffs, and the table of points
(change against the baseline with its interval, answer flips, compute saved)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from cliffscope.report import tables
from cliffscope.tui.widgets.plots import SweepPlot
from cliffscope.vocab import fmt, fmt_pct, fmt_signed

COLUMNS = ("k", "depth", "score", "Δ", "Δ 95%", "→wrong", "→right", "FLOPs saved", "KV saved", "ms")


class SweepPane(Vertical, can_focus=False):
    def compose(self) -> ComposeResult:
        yield Static(id="sweep-note", classes="pane-note")
        yield SweepPlot(id="sweep-plot")
        table = DataTable(id="sweep-table", cursor_type="row", zebra_stripes=True)
        yield table

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns(*COLUMNS)

    def show(
        self,
        result: dict[str, Any] | None,
        cliffs: Text,
        flow_cliff: int | None,
        source: str = "",
    ) -> None:
        note = Text()
        if source:
            note.append(source + "\n", style="italic")
        note.append_text(cliffs)
        base = tables.baseline(result or {})
        if base and base["score"] is not None:
            note.append(
                f"\nbaseline (untruncated) {fmt(base['score'])} [{fmt(base['lo'])}, {fmt(base['hi'])}]"
            )
        self.query_one("#sweep-note", Static).update(note)
        self.query_one(SweepPlot).show(result, flow_cliff)
        table = self.query_one(DataTable)
        cursor = table.cursor_row
        table.clear()
        cliff = ((result or {}).get("cliff") or {}).get("layer")
        for row in tables.sweep_rows(result or {}):
            style = "bold green" if row["k"] == cliff else ""
            table.add_row(
                Text(str(row["k"]), style=style),
                fmt(row["depth"], 2),
                fmt(row["score"]),
                fmt_signed(row["delta"]),
                f"[{fmt_signed(row['lo'])}, {fmt_signed(row['hi'])}]",
                str(row["flips_to_wrong"] if row["flips_to_wrong"] is not None else "–"),
                str(row["flips_to_right"] if row["flips_to_right"] is not None else "–"),
                fmt_pct(row["flops_saved"], 0),
                fmt_pct(row["kv_saved"], 0),
                fmt(row["latency_ms"], 1),
            )
        if table.row_count:
            table.move_cursor(row=min(cursor, table.row_count - 1), animate=False)

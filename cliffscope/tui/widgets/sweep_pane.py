"""The Sweep tab: score against k with the baseline and both cliffs, and the table of points
(change against the baseline with its interval, answer flips, compute saved)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import DataTable, Static

from cliffscope.report import tables
from cliffscope.tui.pane_view import PaneView
from cliffscope.tui.widgets.plots import SweepPlot
from cliffscope.tui.widgets.table_pane import TablePane
from cliffscope.vocab import (
    fmt,
    fmt_int,
    fmt_interval,
    fmt_pct,
    fmt_signed,
    interval_label,
    result_alpha,
)

COLUMNS = (
    "k",
    "depth",
    "score",
    "Δ",
    "Δ {level}",
    "→wrong",
    "→right",
    "FLOPs saved",
    "KV saved",
    "ms",
)


class SweepPane(TablePane):
    def compose(self) -> ComposeResult:
        yield Static(id="sweep-note", classes="pane-note")
        yield SweepPlot(id="sweep-plot")
        table = DataTable(id="sweep-table", cursor_type="row", zebra_stripes=True)
        yield table

    def on_mount(self) -> None:
        self._columns(interval_label())

    def _columns(self, level: str) -> None:
        """The table's columns, the interval's level in its header."""
        self.set_columns(tuple(c.format(level=level) for c in COLUMNS))

    def show_view(self, view: PaneView) -> None:
        method = view.kind.cliff_method
        colour = method.colour if method else "green"
        notes = view.kind.notes(view.result or {})
        self.show(view.result, view.cliffs, view.others(), view.note, colour, notes)

    def show(
        self,
        result: dict[str, Any] | None,
        cliffs: Text,
        others: list[tuple[int, str, str]] | None = None,
        source: str = "",
        colour: str = "green",
        notes: list[str] | tuple[str, ...] = (),
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
        for line in notes:  # e.g. a half-precision sweep's engine check
            note.append(f"\n{line}", style="yellow")
        self.query_one("#sweep-note", Static).update(note)
        self.query_one(SweepPlot).show(result, others or [], colour)
        self._columns(interval_label(result_alpha(result or {})))
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
                fmt_interval(row["lo"], row["hi"], signed=True),
                fmt_int(row["flips_to_wrong"]),
                fmt_int(row["flips_to_right"]),
                fmt_pct(row["flops_saved"], 0),
                fmt_pct(row["kv_saved"], 0),
                fmt(row["latency_ms"], 1),
            )
        if table.row_count:
            table.move_cursor(row=min(cursor, table.row_count - 1), animate=False)

"""The Knockout tab: the relative change of the answer's probability per window start, one
curve per knocked-out edge with the knockout cliff and the other kinds' estimates, and the
table of window starts (each edge's mean change with its interval)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import DataTable, Static

from cliffscope.report import knockout_report as ko
from cliffscope.tui.pane_view import PaneView
from cliffscope.tui.widgets.plots import KnockoutPlot, legend_text
from cliffscope.tui.widgets.table_pane import TablePane
from cliffscope.vocab import edge_colour, interval_label, result_alpha


class KnockoutPane(TablePane):
    def compose(self) -> ComposeResult:
        yield Static(id="knockout-note", classes="pane-note")
        yield KnockoutPlot(id="knockout-plot")
        yield DataTable(id="knockout-table", cursor_type="row", zebra_stripes=True)

    def show_view(self, view: PaneView) -> None:
        method = view.kind.cliff_method
        colour = method.colour if method else "yellow"
        self.show(view.result, view.cliffs, view.others(), view.note, colour)

    def show(
        self,
        result: dict[str, Any] | None,
        cliffs: Text,
        others: list[tuple[int, str, str]] | None = None,
        source: str = "",
        colour: str = "yellow",
    ) -> None:
        result = result or {}
        which, names, starts = ko.measure(result), ko.edges(result), ko.starts(result)
        by_edge = {e: ko.series(result, which, e) for e in names}
        note = Text()
        if source:
            note.append(source + "\n", style="italic")
        note.append_text(cliffs)
        if names:  # the curves' colours (the note holds three lines: cliffs, score, this)
            note.append("\n")
            note.append_text(legend_text(names, {e: edge_colour(i) for i, e in enumerate(names)}))
        self.query_one("#knockout-note", Static).update(note)
        curves = {e: s["mean"] for e, s in by_edge.items()}
        self.query_one(KnockoutPlot).show(result, curves, starts, others or [], colour)
        level = interval_label(result_alpha(result))
        self.set_columns(("l", "layers", *(f"{e} ({level})" for e in names)))
        table = self.query_one(DataTable)
        cursor = table.cursor_row
        table.clear()
        cliff = (result.get("cliff") or {}).get("layer")
        for i, start in enumerate(starts):
            style = f"bold {colour}" if start == cliff else ""
            end = ko.window_end(result, start)
            cells = [
                f"{ko.pct(s['mean'][i])} [{ko.pct(s['lo'][i])}, {ko.pct(s['hi'][i])}]"
                for s in by_edge.values()
            ]
            span = str(start) if end in (None, start) else f"{start}–{end}"
            table.add_row(Text(str(start), style=style), span, *cells)
        if table.row_count:
            table.move_cursor(row=min(cursor, table.row_count - 1), animate=False)

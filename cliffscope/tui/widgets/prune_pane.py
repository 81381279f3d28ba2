"""The Prune tab: score against FLOPs saved per (strategy, budget) branch with the Pareto
front, and the table of branches (change against the baseline with its interval, flips,
savings, prefill time). Rows come from `report.prune_report.prune_rows`, as in the report."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import DataTable, Static

from cliffscope.report.prune_report import baseline, notes, prune_rows
from cliffscope.tui.pane_view import PaneView
from cliffscope.tui.widgets.plots import RUN_COLOURS, _Figure, legend_text
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

COLUMNS = ("branch", "score", "Δ", "Δ {level}", "→wrong", "→right", "kept", "FLOPs", "KV", "ms")


def strategy_colours(result: dict[str, Any]) -> dict[str, str]:
    """One plot colour per strategy, in the run's order (the plot and its legend line)."""
    names = dict.fromkeys(str(r["strategy"]) for r in prune_rows(result))
    return {name: RUN_COLOURS[i % len(RUN_COLOURS)] for i, name in enumerate(names)}


class ParetoPlot(_Figure):
    """Score against FLOPs saved: one colour per strategy, the baseline grey, the front white.
    The legend is a line above the plot (plotext's own would hide the baseline at 0%)."""

    def show(self, result: dict[str, Any] | None) -> None:
        result = result or {}
        rows = [r for r in prune_rows(result) if r["score"] is not None]
        rows = [r for r in rows if r["flops_saved"] is not None]
        base = baseline(result)
        if not rows:
            self._empty("token pruning: no branches yet")
            return
        front = result.get("pareto") or []
        title = f"{result.get('metric', 'score')} vs FLOPs saved"
        if front:
            title += (
                "  │ front " + ", ".join(map(str, front[:4])) + (" …" if len(front) > 4 else "")
            )
        plt = self._start(title)
        drawn = [r["score"] for r in rows]
        if base is not None:
            plt.scatter([0.0], [base["score"]], color="gray", marker="◆")
            self.markers["baseline"] = float(base["score"])
            drawn.append(float(base["score"]))
        for strategy, colour in strategy_colours(result).items():
            mine = [r for r in rows if r["strategy"] == strategy]
            xs = [100 * r["flops_saved"] for r in mine]
            ys = [r["score"] for r in mine]
            self.series[strategy] = (xs, ys)
            plt.scatter(xs, ys, color=colour, marker="●")
        points = {str(r["name"]): r for r in rows}
        if base is not None:
            points["base"] = {**base, "flops_saved": 0.0}
        line = sorted((points[n] for n in front if n in points), key=lambda r: r["flops_saved"])
        if len(line) > 1:
            self.series["front"] = (
                [100 * r["flops_saved"] for r in line],
                [r["score"] for r in line],
            )
            plt.plot(*self.series["front"], color="white", marker="braille")
        self._round_yticks(drawn)
        plt.xlabel("FLOPs saved (%)   (grey ◆: baseline; line: Pareto front)")
        self.refresh()


class PrunePane(TablePane):
    def compose(self) -> ComposeResult:
        yield Static(id="prune-note", classes="pane-note")
        yield Static(id="prune-legend")
        yield ParetoPlot(id="prune-plot")
        yield DataTable(id="prune-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        self._columns(interval_label())

    def _columns(self, level: str) -> None:
        """The table's columns, the interval's level in its header."""
        self.set_columns(tuple(c.format(level=level) for c in COLUMNS))

    def show_view(self, view: PaneView) -> None:
        result = view.result or {}
        note = Text()
        if view.note:
            note.append(view.note + "\n", style="italic")
        note.append(f"layer K = {result.get('layer', '?')}, engine {result.get('engine', '?')}")
        base = baseline(result)
        if base:
            note.append(
                f"\nbaseline (untouched) {fmt(base['score'])} [{fmt(base.get('lo'))}, "
                f"{fmt(base.get('hi'))}]"
            )
        for line in notes(result):
            note.append(f"\n{line}", style="yellow")
        self.query_one("#prune-note", Static).update(note)
        colours = strategy_colours(result)
        self.query_one("#prune-legend", Static).update(legend_text(list(colours), colours))
        self.query_one(ParetoPlot).show(result)
        self._columns(interval_label(result_alpha(result)))
        self._rows(result)

    def _rows(self, result: dict[str, Any]) -> None:
        table = self.query_one(DataTable)
        cursor = table.cursor_row
        table.clear()
        for row in prune_rows(result):
            style = "bold green" if row["pareto"] else ""
            table.add_row(
                Text(str(row["name"]) + (" ◆" if row["pareto"] else ""), style=style),
                fmt(row["score"]),
                fmt_signed(row["delta"]),
                fmt_interval(row["lo"], row["hi"], signed=True),
                fmt_int(row["flips_to_wrong"]),
                fmt_int(row["flips_to_right"]),
                fmt_pct(row["kept_share"], 0),
                fmt_pct(row["flops_saved"], 0),
                fmt_pct(row["kv_saved"], 0),
                fmt(row["latency_ms"], 1),
            )
        if table.row_count:
            table.move_cursor(row=min(cursor, table.row_count - 1), animate=False)

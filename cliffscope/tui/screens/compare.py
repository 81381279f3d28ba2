"""Compare: two or more runs overlaid on normalised depth, and their cliffs side by side.

Curves and rows come from `cliffscope.report.compare`/`tables`, the same numbers the exported
compare.md shows. The screen reloads when any of its runs changes on disk.
"""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static

from cliffscope.report import compare, tables
from cliffscope.report.rundata import RunData, find_partner
from cliffscope.store import RunDir
from cliffscope.tui import keys
from cliffscope.tui.rows import RunRow
from cliffscope.tui.widgets.footer import KeysFooter
from cliffscope.tui.widgets.plots import RUN_COLOURS, DepthPlot
from cliffscope.vocab import fmt

COLUMNS = ("", "run", "kind", "layers", "score", "flow cliff", "sweep cliff", "status")


def _cliff(layer, dep, verdict) -> str:
    if layer is None:
        return str(verdict or "–")
    return f"{layer} ({fmt(dep, 2)})"


class CompareScreen(Screen):
    HELP = (
        "Runs on one depth axis (layer / number of layers), so models of different depth line "
        "up. Left: image-group attention mass of the analyses. Right: score change against the "
        "untruncated baseline of the sweeps. e exports the comparison as Markdown."
    )
    BINDINGS = [
        keys.BACK,
        keys.HELP,
        Binding("e", "export", "Export"),
    ]

    def __init__(self, run_ids: list[str]) -> None:
        super().__init__()
        self.run_ids = list(run_ids)
        self._key: tuple = ()

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical():
            with Horizontal(id="compare-plots"):
                yield DepthPlot(id="compare-flow")
                yield DepthPlot(id="compare-sweep")
            yield Static(id="compare-note", classes="pane-note")
            yield DataTable(id="compare-table", cursor_type="row", zebra_stripes=True)
        yield KeysFooter()

    def on_mount(self) -> None:
        self.sub_title = f"compare {len(self.run_ids)} runs"
        self.query_one(DataTable).add_columns(*COLUMNS)
        self.watch(self.app, "runs", self._runs_changed)
        self.query_one(DataTable).focus()

    def _runs_changed(self, rows: tuple[RunRow, ...]) -> None:
        mine = {r.id: r for r in rows if r.id in self.run_ids}
        key = tuple((r.id, r.status, r.done, r.headline) for r in mine.values())
        if key != self._key:
            self._key = key
            self._load([mine[i].path for i in self.run_ids if i in mine])

    @work(thread=True, exclusive=True, exit_on_error=False)
    def _load(self, paths: list[str]) -> None:
        datas = [RunData.load(RunDir(p), samples=False) for p in paths]
        partners = {d.id: find_partner(d, datas) for d in datas}
        self.app.call_from_thread(self._show, datas, partners)

    def _show(self, datas: list[RunData], partners: dict) -> None:
        flow, sweep = compare.curves(datas, "flow"), compare.curves(datas, "sweep")
        self.query_one("#compare-flow", DepthPlot).show(flow, "image attention mass")
        self.query_one("#compare-sweep", DepthPlot).show(
            sweep, "score − baseline after truncation", zero=True
        )
        colours = {}
        for group in (flow, sweep):  # the plots colour runs in this order
            for i, (label, *_rest) in enumerate(group):
                colours[label] = RUN_COLOURS[i % len(RUN_COLOURS)]
        table = self.query_one(DataTable)
        table.clear()
        for data, row in zip(datas, tables.compare_rows(datas, partners), strict=True):
            swatch = Text("━━", style=colours.get(data.label, "grey42"))
            table.add_row(
                swatch,
                data.label,
                row["kind"],
                str(row["num_layers"] or "–"),
                fmt(row["score"]),
                _cliff(row["flow_cliff"], row["flow_cliff_depth"], row["flow_verdict"]),
                _cliff(row["sweep_cliff"], row["sweep_cliff_depth"], row["sweep_verdict"]),
                row["status"],
                key=data.id,
            )
        missing = len(self.run_ids) - len(datas)
        note = (
            "cliff columns: layer (normalised depth); a missing estimate comes from the partner run"
        )
        if missing:
            note += f"; {missing} run(s) no longer in the store"
        self.query_one("#compare-note", Static).update(note)

    def action_export(self) -> None:
        self.app.open_export(self.run_ids)

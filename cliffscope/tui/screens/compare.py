"""Compare: two or more runs overlaid on normalised depth, and their cliffs side by side.

One plot per run kind with a depth curve, one column per kind's cliff estimate; curves and
rows come from `cliffscope.report.compare`/`tables`, the same numbers the exported compare.md
shows. The screen reloads when any of its runs changes on disk.
"""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static

from cliffscope.kinds.registry import cliff_methods
from cliffscope.report import compare, tables
from cliffscope.report.rundata import RunData, find_partners
from cliffscope.store import RunDir
from cliffscope.tui import keys
from cliffscope.tui.rows import RunRow
from cliffscope.tui.widgets.footer import KeysFooter
from cliffscope.tui.widgets.plots import RUN_COLOURS, DepthPlot
from cliffscope.vocab import MISSING, fmt, fmt_int


def columns() -> tuple[str, ...]:
    return ("", "run", "kind", "layers", "score", *(m.short for _, m in cliff_methods()), "status")


def _cliff(layer, dep, verdict) -> str:
    if layer is None:
        return str(verdict or MISSING)
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
                for kind in compare.curve_kinds():
                    yield DepthPlot(id=f"compare-{kind.name}")
            yield Static(id="compare-note", classes="pane-note")
            yield DataTable(id="compare-table", cursor_type="row", zebra_stripes=True)
        yield KeysFooter()

    def on_mount(self) -> None:
        self.sub_title = f"compare {len(self.run_ids)} runs"
        self.query_one(DataTable).add_columns(*columns())
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
        partners = {d.id: find_partners(d, datas) for d in datas}
        self.app.call_from_thread(self._show, datas, partners)

    def _show(self, datas: list[RunData], partners: dict) -> None:
        colours = {}
        for kind in compare.curve_kinds():
            curves = compare.curves(datas, kind)
            plot = self.query_one(f"#compare-{kind.name}", DepthPlot)
            plot.show(curves, kind.curve.title, zero=kind.curve.zero_line)
            for i, (label, *_rest) in enumerate(curves):  # the plots colour runs in this order
                colours[label] = RUN_COLOURS[i % len(RUN_COLOURS)]
        table = self.query_one(DataTable)
        table.clear()
        methods = [m for _, m in cliff_methods()]
        for data, row in zip(datas, tables.compare_rows(datas, partners), strict=True):
            swatch = Text("━━", style=colours.get(data.label, "grey42"))
            table.add_row(
                swatch,
                data.label,
                row["kind"],
                fmt_int(row["num_layers"]),
                fmt(row["score"]),
                *(
                    _cliff(
                        row[f"{m.key}_cliff"], row[f"{m.key}_cliff_depth"], row[f"{m.key}_verdict"]
                    )
                    for m in methods
                ),
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

"""The home screen: every run in the store, live, sortable, filterable, with marks for
compare and export."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Header, Input, Static

from cliffscope.tui import keys
from cliffscope.tui.format import clip
from cliffscope.tui.rows import SORT_KEYS, RunRow, sort_rows
from cliffscope.tui.widgets.footer import KeysFooter
from cliffscope.tui.widgets.gpu_panel import GpuPanel
from cliffscope.tui.widgets.runs_table import RunsTable


class RunsScreen(Screen):
    HELP = (
        "Every run in the store, refreshed from disk twice a second. Enter opens a run; space "
        "marks runs for compare (c) and export (e); / filters, s cycles the sort column, S "
        "reverses it; x cancels the highlighted run, u resumes it. n starts a new run."
    )
    BINDINGS = [
        keys.HELP,
        keys.QUIT,
        Binding("enter", "open", "Open", show=False),
        Binding("space", "mark", "Mark", key_display="␣"),
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("s", "sort", "Sort"),
        Binding("S", "reverse", "Reverse", show=False),
        Binding("x", "cancel", "Cancel"),
        Binding("u", "resume", "Resume"),
        Binding("c", "compare", "Compare"),
        Binding("e", "export", "Export"),
        Binding("escape", "clear", "Clear", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.sort_key = "age"
        self.sort_reverse = False
        self.filter_text = ""
        self.marked: list[str] = []
        self._want: str | None = None  # a run just launched: select it once it shows up

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="runs-body"):
            yield Input(placeholder="filter: words in id, kind, profile, task, status", id="filter")
            yield RunsTable(id="runs")
            yield Static(id="run-detail")
            yield GpuPanel(id="gpus")
        yield KeysFooter()

    def on_mount(self) -> None:
        self.query_one("#filter", Input).display = False
        self.watch(self.app, "runs", self._runs_changed)
        self.watch(self.app, "gpus", self._gpus_changed)
        self.watch(self.app, "loaded", lambda _: self._refresh_table())
        self.set_interval(5.0, self._refresh_table)  # ages tick even when nothing changes
        self.query_one(RunsTable).focus()

    # ---- data -------------------------------------------------------------------------
    @property
    def table(self) -> RunsTable:
        return self.query_one(RunsTable)

    def _runs_changed(self, _rows: tuple[RunRow, ...]) -> None:
        self._refresh_table()

    def _gpus_changed(self, gpus) -> None:
        self.query_one(GpuPanel).show(gpus)

    def visible_rows(self) -> list[RunRow]:
        rows = [r for r in self.app.runs if r.matches(self.filter_text)]
        return sort_rows(rows, self.sort_key, self.sort_reverse)

    def _refresh_table(self) -> None:
        live = {r.id for r in self.app.runs}
        self.marked = [m for m in self.marked if m in live]
        self.table.set_rows(self.visible_rows(), self.marked, self.app.now())
        if self._want and any(r.id == self._want for r in self.table.shown):
            self.table.select_run(self._want)
            self._want = None
        self._show_detail()

    def _show_detail(self) -> None:
        detail = self.query_one("#run-detail", Static)
        row = self.current_row()
        if row is None:
            if not self.app.loaded:
                detail.update("reading runs…")
            elif not self.app.runs:
                detail.update(
                    Text.assemble(
                        "No runs yet in ",
                        (str(self.app.store.root), "bold"),
                        ". Press ",
                        ("n", "bold reverse"),
                        " to start one (profile demo runs on the CPU).",
                    )
                )
            else:
                detail.update("no run matches the filter")
            return
        sort = f"sorted by {self.sort_key}{' (reversed)' if self.sort_reverse else ''}"
        line = Text.assemble((row.id, "bold"), f"  {sort}")
        if self.marked:
            line.append(f"  {len(self.marked)} marked", style="yellow")
        second = Text(clip(row.model, 40), style="dim")
        if row.trust_remote_code:
            second.append("  remote code ON", style="bold red")
        if row.error:
            second.append(
                "  " + clip(row.error + (f" — {row.hint}" if row.hint else ""), 120), "red"
            )
        elif row.problem:
            second.append("  " + clip(row.problem, 120), style="red")
        detail.update(Text("\n").join([line, second]))

    def current_row(self) -> RunRow | None:
        run_id = self.table.cursor_run_id
        return self.app.row(run_id) if run_id else None

    def select_run(self, run_id: str) -> None:
        self._want = run_id
        self._refresh_table()

    @on(DataTable.RowHighlighted)
    def _highlighted(self) -> None:
        self._show_detail()

    @on(DataTable.RowSelected)
    def _selected(self, event: DataTable.RowSelected) -> None:
        self.app.open_run(str(event.row_key.value))

    # ---- filter ---------------------------------------------------------------------------
    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        box.focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value
        self._refresh_table()

    @on(Input.Submitted, "#filter")
    def _filter_done(self) -> None:
        self.table.focus()

    def action_clear(self) -> None:
        box = self.query_one("#filter", Input)
        if box.has_focus or self.filter_text:
            box.value = ""
            box.display = False
            self.filter_text = ""
        else:
            self.marked = []
        self.table.focus()
        self._refresh_table()

    # ---- actions ------------------------------------------------------------------------------
    def action_open(self) -> None:
        row = self.current_row()
        if row is not None:
            self.app.open_run(row.id)

    def action_mark(self) -> None:
        row = self.current_row()
        if row is None:
            return
        if row.id in self.marked:
            self.marked.remove(row.id)
        else:
            self.marked.append(row.id)
        self._refresh_table()
        if self.table.cursor_row < len(self.table.shown) - 1:
            self.table.move_cursor(row=self.table.cursor_row + 1, animate=False)

    def action_sort(self) -> None:
        self.sort_key = SORT_KEYS[(SORT_KEYS.index(self.sort_key) + 1) % len(SORT_KEYS)]
        self._refresh_table()

    def action_reverse(self) -> None:
        self.sort_reverse = not self.sort_reverse
        self._refresh_table()

    def action_cancel(self) -> None:
        row = self.current_row()
        if row is not None:
            self.app.cancel(row.id)

    def action_resume(self) -> None:
        row = self.current_row()
        if row is not None:
            self.app.resume(row.id)

    def _targets(self) -> list[str]:
        if self.marked:
            return list(self.marked)
        row = self.current_row()
        return [row.id] if row else []

    def action_compare(self) -> None:
        self.app.open_compare(list(self.marked))

    def action_export(self) -> None:
        self.app.open_export(self._targets())

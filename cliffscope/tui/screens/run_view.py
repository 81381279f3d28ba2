"""One run in tabs: Flow, Maps, Sweep, Samples, Log — filled in live by the poller.

An analysis and a sweep of the same model and task are partners (report.rundata): each run's
view also shows its partner's curves, so both cliff estimates are always side by side.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import DataTable, Header, RichLog, Static, TabbedContent, TabPane, Tabs

from cliffscope.report import tables
from cliffscope.report.rundata import RunData, find_partner
from cliffscope.store import RunDir
from cliffscope.tui import keys
from cliffscope.tui.format import clip
from cliffscope.tui.messages import RunDetail
from cliffscope.tui.rows import RunRow
from cliffscope.tui.widgets.flow_pane import FlowPane, cliff_text
from cliffscope.tui.widgets.footer import KeysFooter
from cliffscope.tui.widgets.maps_pane import MapsPane
from cliffscope.tui.widgets.progress import RunProgress
from cliffscope.tui.widgets.samples_pane import SamplesPane
from cliffscope.tui.widgets.sweep_pane import SweepPane

TABS = ("flow", "maps", "sweep", "samples", "log")


def event_line(event: dict[str, Any]) -> Text | None:
    """One Log line; progress events are left out (the bar shows them)."""
    kind = event.get("type")
    if kind == "progress":
        return None
    try:
        when = datetime.fromtimestamp(float(event.get("t", 0)), timezone.utc).strftime("%H:%M:%S")
    except (TypeError, ValueError, OverflowError):
        when = "--:--:--"
    text = Text(f"{when} ", style="dim")
    if kind == "status":
        text.append(f"status {event.get('status')}", style="bold")
    elif kind == "error":
        text.append(f"error: {event.get('message')}", style="bold red")
        if event.get("hint"):
            text.append(f"\n  hint: {event['hint']}", style="yellow")
        trace = str(event.get("traceback") or "").strip().splitlines()[-6:]
        if trace:
            text.append("\n  " + "\n  ".join(trace), style="dim red")
    else:
        level = str(event.get("level", "info"))
        style = {"warning": "yellow", "error": "red"}.get(level, "")
        text.append(f"{level}: {event.get('message', '')}", style=style)
    return text


class RunViewScreen(Screen):
    HELP = (
        "One run, live. 1-5 or [ and ] switch tabs. Flow: attention to each token group per "
        "layer with 95% intervals; grey is the even-spread level, the vertical line the cliff; "
        "d toggles mass and density. Maps: ←/→ layer, ↑/↓ sample, t attention/CAM. Sweep: score "
        "against the truncation layer k, baseline in grey, green = sweep cliff, magenta = flow "
        "cliff. Samples: f shows only flipped (sweep) or wrong (analysis) samples; the "
        "selected sample's picture, question and answers show beside the list. g switches "
        "how pictures are drawn (Kitty graphics, Sixel, half-blocks)."
    )
    BINDINGS = [
        keys.BACK,
        keys.HELP,
        *[
            Binding(str(i + 1), f"tab('{name}')", name.title(), show=False)
            for i, name in enumerate(TABS)
        ],
        Binding("left_square_bracket", "cycle(-1)", "Previous tab", show=False, key_display="["),
        Binding("right_square_bracket", "cycle(1)", "Next tab", show=False, key_display="]"),
        Binding("x", "cancel", "Cancel"),
        Binding("u", "resume", "Resume"),
        Binding("e", "export", "Export"),
        Binding("g", "graphics", "Pictures: Kitty/Sixel/half-blocks", show=False),
        # pane keys live here (not on the panes) so focus can stay on the tab bar: a tab
        # switch then moves no focus, which keeps the footer and the tables' caches intact
        Binding("d", "flow_measure", "Flow: mass/density", show=False),
        Binding("left", "maps_layer(-1)", "Maps: layer down", show=False, priority=True),
        Binding("right", "maps_layer(1)", "Maps: layer up", show=False, priority=True),
        Binding("t", "maps_view", "Maps: attention/CAM", show=False),
        Binding("f", "samples_filter", "Samples: only flips/wrong", show=False),
        Binding("up", "move(-1)", "Row/sample up", show=False),
        Binding("down", "move(1)", "Row/sample down", show=False),
        Binding("pageup", "move(-10)", "Page up", show=False),
        Binding("pagedown", "move(10)", "Page down", show=False),
    ]
    PANE_ACTIONS = {
        "flow_measure": "flow",
        "maps_layer": "maps",
        "maps_view": "maps",
        "samples_filter": "samples",
    }

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id
        self.run_data: RunData | None = None
        self.partner: RunData | None = None
        self._partner_key: tuple = ()
        self._row: RunRow | None = None
        # Panes are built now but mounted when their tab is first shown: opening a run then
        # composes one pane, not five. Samples and log lines collect here until then.
        self.panes: dict[str, Widget] = {
            "flow": FlowPane(id="flow-pane"),
            "maps": MapsPane(id="maps-pane"),
            "sweep": SweepPane(id="sweep-pane"),
            "samples": SamplesPane(id="samples-pane"),
            "log": RichLog(id="log", max_lines=2000, wrap=True),
        }
        self._log_backlog: deque[Text] = deque(maxlen=2000)

    def _pane(self, name: str) -> Any:
        """The pane if it is on screen already, else None."""
        pane = self.panes[name]
        return pane if pane.is_mounted else None

    @property
    def samples(self) -> SamplesPane:
        return self.panes["samples"]  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="run-head")
        yield RunProgress()
        row = self.app.row(self.run_id)
        initial = "sweep" if row and row.kind == "sweep" else "flow"
        with TabbedContent(id="run-tabs", initial=initial):
            for i, name in enumerate(TABS):
                children = [self.panes[name]] if name == initial else []
                yield TabPane(f"{i + 1} {name.title()}", *children, id=name)
        yield KeysFooter()

    def on_mount(self) -> None:
        row = self.app.row(self.run_id)
        path = Path(row.path) if row else self.app.store.path_of(self.run_id)
        # the spec (a 50,000-id run.toml takes ~0.1 s to parse) and result load in a thread;
        # the first frame shows what the runs table already knows
        self.run_data = RunData(self.run_id, path, {"kind": row.kind if row else "?"}, "?", None)
        self.sub_title = self.run_id
        self.samples.reset(row.kind if row else "analysis")
        self._row_changed(self.app.runs)
        self.watch(self.app, "runs", self._row_changed)
        self.app.poller.watch(self.run_id, samples=False)  # samples: when their tab opens
        self.query_one(TabbedContent).query_one(Tabs).focus()
        self._load_run(path)

    @work(thread=True, exclusive=True, group="run", exit_on_error=False)
    def _load_run(self, path: Path) -> None:
        run = RunDir(path)
        spec, result = run.spec, run.result()
        self.app.call_from_thread(self._run_loaded, spec, result)

    def _run_loaded(self, spec: dict[str, Any], result: dict[str, Any] | None) -> None:
        if self.run_data is None:
            return
        self.run_data.spec = spec or self.run_data.spec
        if self.run_data.result is None:  # the poller may have brought a newer one already
            self.run_data.result = result
        self.samples.set_source(self.run_data.path, self.run_data.spec.get("task"))
        self._row, self._partner_key = None, ()  # redraw the header, look for the partner
        self._row_changed(self.app.runs)
        self._redraw_results()

    def on_unmount(self) -> None:
        self.app.poller.unwatch(self.run_id)

    # ---- data in ----------------------------------------------------------------------------
    def _row_changed(self, rows: tuple[RunRow, ...]) -> None:
        row = next((r for r in rows if r.id == self.run_id), None)
        if row != self._row or row is None:
            self._row = row
            self._show_head(row)
            self.query_one(RunProgress).show(row)
        if row is None or self.run_data is None:
            return
        self.run_data.status = row.status
        want = "sweep" if self.run_data.kind == "analysis" else "analysis"
        candidates = tuple(
            (r.id, r.path, r.headline, r.status)
            for r in rows
            if r.kind == want and r.task == row.task and r.model == row.model
        )
        if candidates != self._partner_key:
            self._partner_key = candidates
            self._load_partner([r[1] for r in candidates])

    @work(thread=True, exclusive=True, group="partner", exit_on_error=False)
    def _load_partner(self, paths: list[str]) -> None:
        if self.run_data is None:
            return
        others = [RunData.load(RunDir(p), samples=False) for p in paths]
        partner = find_partner(self.run_data, others)
        self.app.call_from_thread(self._set_partner, partner)

    def _set_partner(self, partner: RunData | None) -> None:
        self.partner = partner
        self._redraw_results()

    def apply_detail(self, message: RunDetail) -> None:
        log = self._pane("log")
        if message.reset and self.run_data is not None:
            self.samples.reset(self.run_data.kind)
            self._log_backlog.clear()
            if log is not None:
                log.clear()
        if message.result_changed and self.run_data is not None:
            self.run_data.result = message.result
            self._redraw_results()
        self.samples.add(message.samples)
        if self.active_tab == "samples":
            self.samples.render_table()
        for event in message.events:
            line = event_line(event)
            if line is not None:
                if log is not None:
                    log.write(line)
                else:
                    self._log_backlog.append(line)

    # ---- drawing ----------------------------------------------------------------------------
    def _show_head(self, row: RunRow | None) -> None:
        head = self.query_one("#run-head", Static)
        if row is None:
            head.update(Text(f"{self.run_id}: not in the run store (removed?)", style="red"))
            return
        spec = self.run_data.spec if self.run_data else {}
        subset = spec.get("subset", {})
        params = ", ".join(
            f"{k}={v}" for k, v in (spec.get("params") or {}).items() if k != "layers"
        )
        text = Text.assemble(
            (row.kind, "bold"), " · ", (row.profile, "bold"), f" ({clip(row.model, 36)})"
        )
        text.append(
            f" · {row.task} · n={len(subset.get('ids', []))} seed={subset.get('seed', '?')}"
        )
        if row.trust_remote_code:
            text.append("  remote code ON", style="bold red")
        text.append(f"\n{clip(params, 120)}", style="dim")
        if row.error:
            text.append(f"\n{clip(row.error, 160)}", style="bold red")
            if row.hint:
                text.append(f" — {clip(row.hint, 120)}", style="yellow")
        head.update(text)

    def _redraw_results(self) -> None:
        if self.run_data is None:
            return
        own, partner = self.run_data, self.partner
        cliffs = cliff_text(tables.cliff_rows(own, partner), tables.score(own.res))
        analysis = own if own.kind == "analysis" else partner
        sweep = own if own.kind == "sweep" else partner
        note = "from analysis {}" if own.kind == "sweep" else "from sweep {}"
        a_note = (
            ""
            if analysis is own
            else (
                note.format(analysis.id) if analysis else "no analysis of this model and task yet"
            )
        )
        s_note = (
            ""
            if sweep is own
            else (note.format(sweep.id) if sweep else "no sweep of this model and task yet")
        )
        if flow_pane := self._pane("flow"):
            flow_pane.show(analysis.result if analysis else None, cliffs, a_note)
        if maps_pane := self._pane("maps"):
            maps_pane.show(
                analysis.path if analysis else None, analysis.result if analysis else None, a_note
            )
        flow = tables.flow_cliff(own, partner) or {}
        if sweep_pane := self._pane("sweep"):
            sweep_pane.show(sweep.result if sweep else None, cliffs, flow.get("layer"), s_note)

    # ---- tabs and actions --------------------------------------------------------------------
    @on(TabbedContent.TabActivated)
    async def _tab_activated(self, event: TabbedContent.TabActivated) -> None:
        name = str(event.pane.id)
        pane = self.panes.get(name)
        if pane is None:
            return
        if pane.parent is None:  # first visit: mount the pane, then fill it from the state
            await event.pane.mount(pane)
            if name == "log":
                for line in self._log_backlog:
                    pane.write(line)
                self._log_backlog.clear()
            else:
                self._redraw_results()
        if name == "samples":
            self.app.poller.want_samples(self.run_id)
            self.samples.render_table()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        tab = self.PANE_ACTIONS.get(action)
        return tab is None or (self.active_tab == tab and self._pane(tab) is not None)

    @property
    def active_tab(self) -> str:
        return self.query_one(TabbedContent).active

    def action_flow_measure(self) -> None:
        self.panes["flow"].action_toggle_measure()

    def action_maps_layer(self, step: int) -> None:
        self.panes["maps"].action_layer(step)

    def action_maps_view(self) -> None:
        self.panes["maps"].action_toggle_view()

    def action_samples_filter(self) -> None:
        self.samples.action_toggle_filter()

    def action_move(self, step: int) -> None:
        pane = self._pane(self.active_tab)
        if pane is None:
            return
        if isinstance(pane, MapsPane):
            pane.action_sample(1 if step > 0 else -1)
        elif isinstance(pane, (SweepPane, SamplesPane)):
            table = pane.query_one(DataTable)
            if table.row_count:
                row = min(max(table.cursor_row + step, 0), table.row_count - 1)
                table.move_cursor(row=row, animate=False)
        elif isinstance(pane, RichLog):
            pane.scroll_relative(y=step, animate=False)

    def action_tab(self, name: str) -> None:
        self.query_one(TabbedContent).active = name

    def action_cycle(self, step: int) -> None:
        tabs = self.query_one(TabbedContent)
        index = TABS.index(tabs.active) if tabs.active in TABS else 0
        tabs.active = TABS[(index + step) % len(TABS)]

    def action_cancel(self) -> None:
        self.app.cancel(self.run_id)

    def action_resume(self) -> None:
        self.app.resume(self.run_id)

    def action_graphics(self) -> None:
        self.app.cycle_graphics()

    def action_export(self) -> None:
        self.app.open_export([self.run_id])

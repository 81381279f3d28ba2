"""One run in tabs: its kind's panes, its partners' panes, Samples and Log — filled in live.

The tabs come from the run kinds (`RunKind.panes`): the run's own kind and its partner kinds
(`kinds.registry.family`, registry order), then Samples and Log. A partner kind's panes show
the newest run of that kind on the same model and task (report.rundata), so every cliff
estimate stands side by side; a plugin kind's panes join the same way.
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
from textual.widgets import Header, RichLog, Static, TabbedContent, TabPane, Tabs

from cliffscope.kinds.base import RunKind
from cliffscope.kinds.registry import family, kind_of, load_target, partners_of
from cliffscope.report import tables
from cliffscope.report.rundata import RunData, find_partners
from cliffscope.store import RunDir
from cliffscope.tui import keys
from cliffscope.tui.format import clip
from cliffscope.tui.messages import RunDetail
from cliffscope.tui.pane_view import PaneView
from cliffscope.tui.rows import RunRow
from cliffscope.tui.widgets.flow_pane import cliff_text
from cliffscope.tui.widgets.footer import KeysFooter
from cliffscope.tui.widgets.progress import RunProgress
from cliffscope.tui.widgets.samples_pane import SamplesPane

COMMON_TABS = (("samples", "Samples"), ("log", "Log"))


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
        "One run, live. 1-9 or [ and ] switch tabs. Flow: attention to each token group per "
        "layer with intervals; grey is the even-spread level, the vertical line the cliff; "
        "d toggles mass and density. Maps: ←/→ layer, ↑/↓ sample, t attention/CAM. Sweep: score "
        "against the truncation layer k, baseline in grey, each cliff estimate in its colour. "
        "Samples: f shows only flipped (sweep) or wrong (analysis) samples; the selected "
        "sample's picture, question and answers show beside the list. g switches how pictures "
        "are drawn (Kitty graphics, Sixel, half-blocks)."
    )
    BINDINGS = [
        keys.BACK,
        keys.HELP,
        Binding("left_square_bracket", "cycle(-1)", "Previous tab", show=False, key_display="["),
        Binding("right_square_bracket", "cycle(1)", "Next tab", show=False, key_display="]"),
        Binding("x", "cancel", "Cancel"),
        Binding("u", "resume", "Resume"),
        Binding("e", "export", "Export"),
        Binding("g", "graphics", "Pictures: Kitty/Sixel/half-blocks", show=False),
        Binding("up", "move(-1)", "Row/sample up", show=False),
        Binding("down", "move(1)", "Row/sample down", show=False),
        Binding("pageup", "move(-10)", "Page up", show=False),
        Binding("pagedown", "move(10)", "Page down", show=False),
    ]

    def __init__(self, run_id: str, kind: str | None = None) -> None:
        super().__init__()
        self.run_id = run_id
        if kind is None:
            row = self.app.row(run_id)
            kind = row.kind if row else "?"
        self.kind_name = kind
        self.run_data: RunData | None = None
        self.partners: dict[str, RunData] = {}
        self._partner_key: tuple = ()
        self._row: RunRow | None = None
        # Panes are built now but mounted when their tab is first shown: opening a run then
        # composes one pane, not five. Samples and log lines collect here until then.
        self.tab_kinds: dict[str, RunKind] = {}
        self.panes: dict[str, Widget] = {}
        self.titles: dict[str, str] = {}
        for member in family(kind) if kind_of(kind) else []:
            for pane in member.panes:
                self.tab_kinds[pane.name] = member
                self.titles[pane.name] = pane.title
                self.panes[pane.name] = load_target(pane.widget)(id=f"{pane.name}-pane")
        self.panes["samples"] = SamplesPane(id="samples-pane")
        self.panes["log"] = RichLog(id="log", max_lines=2000, wrap=True)
        self.titles.update(COMMON_TABS)
        self.tabs = tuple(self.panes)
        self._bind_tabs_and_pane_keys()
        self._log_backlog: deque[Text] = deque(maxlen=2000)

    def _bind_tabs_and_pane_keys(self) -> None:
        """1-9 per tab, and the keys a pane lifts onto the screen (`SCREEN_KEYS`), so focus can
        stay on the tab bar: a tab switch then moves no focus, which keeps the footer and the
        tables' caches intact."""
        for i, name in enumerate(self.tabs[:9]):
            self._bindings.bind(str(i + 1), f"tab('{name}')", self.titles[name], show=False)
        for name, pane in self.panes.items():
            for binding in getattr(pane, "SCREEN_KEYS", ()):
                action, _, args = binding.action.partition("(")
                extra = f", {args.rstrip(')')}" if args else ""
                self._bindings.bind(
                    binding.key,
                    f"pane_key('{name}', '{action}'{extra})",
                    binding.description,
                    show=False,
                    priority=binding.priority,
                )

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
        own = kind_of(self.kind_name)
        initial = own.panes[0].name if own and own.panes else self.tabs[0]
        with TabbedContent(id="run-tabs", initial=initial):
            for i, name in enumerate(self.tabs):
                children = [self.panes[name]] if name == initial else []
                yield TabPane(f"{i + 1} {self.titles[name]}", *children, id=name)
        yield KeysFooter()

    def on_mount(self) -> None:
        row = self.app.row(self.run_id)
        path = Path(row.path) if row else self.app.store.path_of(self.run_id)
        # the spec (a 50,000-id run.toml takes ~0.1 s to parse) and result load in a thread;
        # the first frame shows what the runs table already knows
        self.run_data = RunData(self.run_id, path, {"kind": self.kind_name}, "?", None)
        self.sub_title = self.run_id
        self.samples.reset(self.kind_name)
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
        self._row, self._partner_key = None, ()  # redraw the header, look for the partners
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
        wanted = set(partners_of(self.kind_name)) if kind_of(self.kind_name) else set()
        candidates = tuple(
            (r.id, r.path, r.headline, r.status)
            for r in rows
            if r.kind in wanted and r.task == row.task and r.model == row.model
        )
        if candidates != self._partner_key:
            self._partner_key = candidates
            self._load_partners([r[1] for r in candidates])

    @work(thread=True, exclusive=True, group="partner", exit_on_error=False)
    def _load_partners(self, paths: list[str]) -> None:
        if self.run_data is None:
            return
        others = [RunData.load(RunDir(p), samples=False) for p in paths]
        partners = find_partners(self.run_data, others)
        self.app.call_from_thread(self._set_partners, partners)

    def _set_partners(self, partners: dict[str, RunData]) -> None:
        self.partners = partners
        self._redraw_results()

    def apply_detail(self, message: RunDetail) -> None:
        log = self._pane("log")
        if message.reset and self.run_data is not None:
            self.samples.reset(self.kind_name)
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
        own = kind_of(row.kind)
        raw = dict(spec.get("params") or {})
        params = own.Params.summary(raw) if own else ", ".join(f"{k}={v}" for k, v in raw.items())
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

    def pane_view(self, kind: RunKind, estimates: list[dict[str, Any]], cliffs: Text) -> PaneView:
        """What a pane of `kind` shows: this run, or its partner of that kind."""
        own = self.run_data
        assert own is not None
        if kind.name == own.kind:
            return PaneView(kind, own, "", cliffs, estimates)
        partner = self.partners.get(kind.name)
        note = (
            f"from {kind.name} {partner.id}"
            if partner
            else f"no {kind.name} of this model and task yet"
        )
        return PaneView(kind, partner, note, cliffs, estimates)

    def _redraw_results(self) -> None:
        if self.run_data is None:
            return
        own = self.run_data
        estimates = tables.cliff_rows(own, self.partners)
        cliffs = cliff_text(estimates, tables.score(own.res))
        for name, kind in self.tab_kinds.items():
            if (pane := self._pane(name)) is not None:
                pane.show_view(self.pane_view(kind, estimates, cliffs))

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
        if action == "pane_key" and parameters:
            tab = str(parameters[0])
            return self.active_tab == tab and self._pane(tab) is not None
        return True

    @property
    def active_tab(self) -> str:
        return self.query_one(TabbedContent).active

    def action_pane_key(self, tab: str, action: str, *args: Any) -> None:
        """A key a pane lifted onto the screen: its action, on that pane."""
        pane = self._pane(tab)
        if pane is not None:
            getattr(pane, f"action_{action}")(*args)

    def action_move(self, step: int) -> None:
        pane = self._pane(self.active_tab)
        if isinstance(pane, RichLog):
            pane.scroll_relative(y=step, animate=False)
        elif hasattr(pane, "move"):
            pane.move(step)

    def action_tab(self, name: str) -> None:
        self.query_one(TabbedContent).active = name

    def action_cycle(self, step: int) -> None:
        tabs = self.query_one(TabbedContent)
        index = self.tabs.index(tabs.active) if tabs.active in self.tabs else 0
        tabs.active = self.tabs[(index + step) % len(self.tabs)]

    def action_cancel(self) -> None:
        self.app.cancel(self.run_id)

    def action_resume(self) -> None:
        self.app.resume(self.run_id)

    def action_graphics(self) -> None:
        self.app.cycle_graphics()

    def action_export(self) -> None:
        self.app.open_export([self.run_id])

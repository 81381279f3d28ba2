"""The dashboard application: screens, global bindings, the poller thread, run operations.

Data flows one way. A thread worker polls the run store and posts messages; the app turns them
into reactive attributes (`runs`, `gpus`) that screens watch, and hands per-run details to the
screen showing that run. Operations (launch, cancel, resume, export) run in thread workers and
report back through notifications. Quitting leaves detached workers running.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.reactive import var
from textual.screen import Screen
from textual.worker import get_current_worker

from cliffscope.errors import CliffscopeError
from cliffscope.kinds.registry import kinds
from cliffscope.store import RunStore
from cliffscope.tui.actions import LaunchedWorkers, LaunchRequest, cancel_run, resume_run, start_run
from cliffscope.tui.gpu import GpuStat, NvmlProbe
from cliffscope.tui.graphics import Graphics
from cliffscope.tui.messages import GpuStats, PollerProblem, RunDetail, RunsSnapshot
from cliffscope.tui.poller import RunPoller
from cliffscope.tui.rows import RunRow
from cliffscope.tui.screens.runs import RunsScreen

GPU_EVERY_S = 2.0
FIRST_SCREEN = 40  # runs read before the first table is posted
BACKLOG_S = 0.02  # pause between slices of a big samples file
WARM_UP = (
    "cliffscope.tui.screens.run_view",
    "cliffscope.tui.screens.launch",
    "cliffscope.tui.screens.profiles",
    "cliffscope.tui.screens.compare",
    "cliffscope.tui.screens.help",
    "cliffscope.tasks.registry",
    "PIL.Image",
)


def utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


class CliffscopeApp(App[None]):
    """`now` and `gpu_probe` are injectable so tests and snapshots are deterministic;
    `graphics` is how pictures are drawn (`graphics.detect()` before the app starts)."""

    TITLE = "cliffscope"
    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses live elsewhere
    BINDINGS = [
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("n", "launch", "New"),
        Binding("p", "profiles", "Profiles"),
        Binding("q", "quit", "Quit"),
    ]

    runs: var[tuple[RunRow, ...]] = var(())
    gpus: var[tuple[GpuStat, ...] | None] = var(None)
    loaded: var[bool] = var(False)
    graphics: var[Graphics] = var(Graphics())

    def __init__(
        self,
        runs_dir: str | os.PathLike,
        profiles_dir: str | os.PathLike | None = None,
        *,
        now: Callable[[], datetime] | None = None,
        poll_interval: float = 0.5,
        gpu_probe: NvmlProbe | None | bool = True,
        graphics: Graphics | None = None,
    ) -> None:
        super().__init__()
        self.graphics = graphics or Graphics()
        self.store = RunStore(runs_dir)
        self.profiles_dir = Path(profiles_dir) if profiles_dir else None
        self.now = now or utc_now
        self.poll_interval = poll_interval
        self.gpu_probe = NvmlProbe() if gpu_probe is True else (gpu_probe or None)
        self.poller = RunPoller(self.store)
        self.launched = LaunchedWorkers()
        self.sub_title = str(self.store.root)

    def get_default_screen(self) -> Screen:
        return RunsScreen()

    def on_mount(self) -> None:
        self._poll_loop()

    @work(thread=True, group="warm-up", exit_on_error=False)
    def _warm_up(self) -> None:
        """Once the runs show, import what the other screens need (plotext, numpy, PIL,
        the task registry) so the first key that opens one repaints without waiting."""
        import importlib

        for module in WARM_UP:
            importlib.import_module(module)

    # ---- the poller thread ------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="poller", exit_on_error=False)
    def _poll_loop(self) -> None:
        worker = get_current_worker()
        last_gpu = -GPU_EVERY_S
        first = True
        while not worker.is_cancelled:
            try:
                rows, changed = self.poller.scan(limit=FIRST_SCREEN if first else None)
                if changed or not self.loaded:
                    self.post_message(RunsSnapshot(rows))
                for detail in self.poller.details():
                    self.post_message(detail)
                if self.gpu_probe is not None and time.monotonic() - last_gpu >= GPU_EVERY_S:
                    last_gpu = time.monotonic()
                    self.post_message(GpuStats(self.gpu_probe.read()))
                self.launched.reap()
            except Exception as exc:  # noqa: BLE001 - keep polling; show the problem once
                self.post_message(PollerProblem(f"{type(exc).__name__}: {exc}"))
            if first:
                first = False
                continue  # the rest of a large store right away
            self.poller.wait(BACKLOG_S if self.poller.behind else self.poll_interval)

    def on_runs_snapshot(self, message: RunsSnapshot) -> None:
        self.runs = message.rows
        if not self.loaded:
            self.loaded = True
            self.call_after_refresh(self._warm_up)  # after the table is on screen

    def on_run_detail(self, message: RunDetail) -> None:
        for screen in self.screen_stack:
            if getattr(screen, "run_id", None) == message.run_id and hasattr(
                screen, "apply_detail"
            ):
                screen.apply_detail(message)

    def on_gpu_stats(self, message: GpuStats) -> None:
        self.gpus = message.gpus
        if message.gpus is None and self.gpu_probe is not None:
            self.gpu_probe = None  # NVML unusable here: stop asking

    def on_poller_problem(self, message: PollerProblem) -> None:
        self.notify(message.text, title="reading runs", severity="error")

    # ---- navigation -------------------------------------------------------------------------
    def _top_is(self, cls: type) -> bool:
        return isinstance(self.screen, cls)

    def action_help(self) -> None:
        from cliffscope.tui.screens.help import HelpScreen

        if not self._top_is(HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    def action_profiles(self) -> None:
        from cliffscope.tui.screens.profiles import ProfilesScreen

        if not self._top_is(ProfilesScreen):
            self.push_screen(ProfilesScreen())

    def action_launch(self, kind: str = "") -> None:
        from cliffscope.tui.screens.launch import LaunchScreen

        if not self._top_is(LaunchScreen):
            self.push_screen(LaunchScreen(kind or None))

    def action_runs(self) -> None:
        while len(self.screen_stack) > 1 and not self._top_is(RunsScreen):
            self.pop_screen()

    def cycle_graphics(self) -> None:
        """Next picture mode (half-blocks, Sixel, Kitty graphics): every picture follows."""
        self.graphics = self.graphics.cycled()
        self.notify(f"pictures: {self.graphics.label}", timeout=3)

    def open_run(self, run_id: str) -> None:
        from cliffscope.tui.screens.run_view import RunViewScreen

        row = self.row(run_id)
        self.push_screen(RunViewScreen(run_id, kind=row.kind if row else None))

    def open_compare(self, run_ids: list[str]) -> None:
        from cliffscope.tui.screens.compare import CompareScreen

        if len(run_ids) < 2:
            self.notify("mark two or more runs with space first", severity="warning")
            return
        self.push_screen(CompareScreen(run_ids))

    def open_export(self, run_ids: list[str]) -> None:
        from cliffscope.tui.screens.export import ExportScreen

        if not run_ids:
            self.notify("no run selected", severity="warning")
            return
        self.push_screen(ExportScreen(run_ids))

    def row(self, run_id: str) -> RunRow | None:
        return next((r for r in self.runs if r.id == run_id), None)

    # ---- operations (thread workers) ---------------------------------------------------
    def _report(self, text: str, error: bool = False) -> None:
        self.notify(text, severity="error" if error else "information", timeout=6)

    @work(thread=True, group="ops", exit_on_error=False)
    def cancel(self, run_id: str) -> None:
        self._operate(lambda: cancel_run(self.store.path_of(run_id)))

    @work(thread=True, group="ops", exit_on_error=False)
    def resume(self, run_id: str) -> None:
        self._operate(lambda: resume_run(self.store.path_of(run_id), self.launched))

    def _operate(self, operation: Callable[[], str]) -> None:
        try:
            text = operation()
        except CliffscopeError as exc:
            self.call_from_thread(self._report, exc.render(), True)
            return
        self.poller.poke()
        self.call_from_thread(self._report, text)

    def launch_run(self, request: LaunchRequest) -> str:
        """Blocking (call from a thread): create and start; returns the run id."""
        run = start_run(self.store, request, self.profiles_dir, self.launched)
        self.poller.poke()
        return run.id

    # ---- command palette ---------------------------------------------------------------
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Runs", "The table of all runs", self.action_runs)
        yield SystemCommand("Profiles", "List, validate, create and edit", self.action_profiles)
        for kind in kinds():
            yield SystemCommand(
                f"New {kind.name}",
                kind.title[:1].upper() + kind.title[1:],
                lambda name=kind.name: self.action_launch(name),
            )
        yield SystemCommand("Help", "Keys of this screen", self.action_help)
        runs_screen = next((s for s in self.screen_stack if isinstance(s, RunsScreen)), None)
        if runs_screen is not None:
            yield SystemCommand(
                "Compare marked runs", "Overlay on depth", runs_screen.action_compare
            )
            yield SystemCommand("Export marked runs", "Markdown report", runs_screen.action_export)
        for row in self.runs[:300]:
            yield SystemCommand(
                f"Open {row.id}",
                f"{row.kind} · {row.status} · {row.headline}",
                lambda run_id=row.id: self.open_run(run_id),
            )

"""Launch: a form for an analysis or a sweep that creates the run and starts a detached worker.

Fields are checked as you go (numbers, the layer list, task options); the rest (profile, task,
subset) is validated by the same `new_run` the CLI uses, and its error is shown in the form.
"""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Header, Input, Label, Select, Static

from cliffscope.errors import CliffscopeError, ValidationError
from cliffscope.profiles import check_all, load_profile
from cliffscope.tui import keys
from cliffscope.tui.actions import LaunchRequest
from cliffscope.tui.widgets.footer import KeysFooter

DEFAULT_TASK = "shapes-vqa"


def _row(label: str, widget) -> Horizontal:
    return Horizontal(Label(label), widget, classes="form-row")


class LaunchScreen(Screen):
    HELP = (
        "Start a run. Tab and shift+tab move between fields; enter opens a choice list. "
        "ctrl+s (or enter in a text field) launches: the run directory is created, a detached "
        "worker starts, and you are back on the runs table with the new run selected."
    )
    BINDINGS = [
        keys.BACK,
        keys.HELP,
        Binding("ctrl+s", "submit", "Launch"),
    ]

    def __init__(self, kind: str | None = None) -> None:
        super().__init__()
        self.initial_kind = kind or "analysis"
        self.profiles: dict[str, bool] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="launch-form"):
            kinds = [("analysis: attention flow + CAM", "analysis"), ("sweep: truncation", "sweep")]
            yield _row(
                "kind",
                Select(kinds, value=self.initial_kind, allow_blank=False, id="kind", compact=True),
            )
            yield _row("profile", Select([], id="profile", compact=True, prompt="no valid profile"))
            yield _row(
                "task",
                Select(
                    [(DEFAULT_TASK, DEFAULT_TASK)],
                    value=DEFAULT_TASK,
                    allow_blank=False,
                    id="task",
                    compact=True,
                ),
            )
            yield _row(
                "limit",
                Input(
                    "32",
                    type="integer",
                    id="limit",
                    compact=True,
                    placeholder="samples (empty = all)",
                ),
            )
            yield _row("seed", Input("0", type="integer", id="seed", compact=True))
            yield _row(
                "max tokens",
                Input(
                    "",
                    type="integer",
                    id="max-new-tokens",
                    compact=True,
                    placeholder="answer cap (empty = smaller of profile and task)",
                ),
            )
            yield _row(
                "query",
                Select(
                    [("last prompt position", "last"), ("every answer token", "answer")],
                    value="last",
                    allow_blank=False,
                    id="query",
                    compact=True,
                    classes="analysis",
                ),
            )
            yield _row(
                "heads",
                Select(
                    [("mean over heads", "mean"), ("max over heads", "max")],
                    value="mean",
                    allow_blank=False,
                    id="heads",
                    compact=True,
                ),
            )
            yield _row(
                "map samples",
                Input(
                    "4",
                    type="integer",
                    id="map-samples",
                    compact=True,
                    placeholder="samples with attention + CAM maps",
                ),
            )
            yield _row(
                "maps for",
                Select(
                    [("the first map samples", False), ("every sample (slow)", True)],
                    value=False,
                    allow_blank=False,
                    id="cam",
                    compact=True,
                ),
            )
            yield _row(
                "layers",
                Input(
                    "", id="layers", compact=True, placeholder="all k = 0..L; or 0:8:2; or 0,2,4"
                ),
            )
            yield _row(
                "mode",
                Select(
                    [("drop image tokens", "drop"), ("mask image tokens", "mask")],
                    value="drop",
                    allow_blank=False,
                    id="mode",
                    compact=True,
                ),
            )
            yield _row(
                "keep ratio",
                Input(
                    "", type="number", id="keep-ratio", compact=True, placeholder="optional, 0..1"
                ),
            )
            yield _row(
                "data path",
                Input(
                    "",
                    id="data-path",
                    compact=True,
                    placeholder="local copy of a hub dataset (optional)",
                ),
            )
            yield _row(
                "task options",
                Input(
                    "", id="overrides", compact=True, placeholder="key=value ... (as tasks --set)"
                ),
            )
            yield Static("", id="profile-note", classes="form-help")
            yield Static("", id="launch-error", classes="error")
            yield Button("Launch (ctrl+s)", id="launch", variant="primary", compact=True)
        yield KeysFooter()

    def on_mount(self) -> None:
        self.sub_title = "new run"
        self._load_profiles()
        self._load_tasks()
        self._kind_changed()
        self.query_one("#kind", Select).focus()

    # ---- choices ----------------------------------------------------------------------------
    def _load_profiles(self) -> None:
        options = []
        for path, error in check_all(self.app.profiles_dir):
            if error is None:
                profile = load_profile(path).profile
                self.profiles[profile.name] = profile.trust_remote_code
                label = profile.name + ("  (remote code ON)" if profile.trust_remote_code else "")
                options.append((label, profile.name))
        select = self.query_one("#profile", Select)
        select.set_options(options)
        if options:
            names = [value for _, value in options]
            select.value = "demo" if "demo" in names else names[0]

    @work(thread=True, exit_on_error=False)
    def _load_tasks(self) -> None:
        from cliffscope.tasks.registry import list_tasks

        names = [spec.name for spec in list_tasks()]
        self.app.call_from_thread(self._set_tasks, names)

    def _set_tasks(self, names: list[str]) -> None:
        select = self.query_one("#task", Select)
        current = select.value
        select.set_options([(name, name) for name in names])
        select.value = current if current in names else (names[0] if names else Select.BLANK)

    @on(Select.Changed, "#kind")
    def _kind_changed(self) -> None:
        sweep = self.query_one("#kind", Select).value == "sweep"
        for wid in ("query", "heads", "cam", "map-samples"):
            self.query_one(f"#{wid}").parent.display = not sweep
        for wid in ("layers", "mode", "keep-ratio"):
            self.query_one(f"#{wid}").parent.display = sweep

    @on(Select.Changed, "#profile")
    def _profile_changed(self) -> None:
        name = self.query_one("#profile", Select).value
        note = self.query_one("#profile-note", Static)
        if self.profiles.get(str(name)):
            note.update(
                "[bold red]trust_remote_code is ON:[/] this profile runs the checkpoint's own Python code"
            )
        else:
            note.update("")

    # ---- submit -------------------------------------------------------------------------------
    def _int(
        self, wid: str, name: str, minimum: int, empty: int | None = None, optional: bool = False
    ) -> int | None:
        text = self.query_one(f"#{wid}", Input).value.strip()
        if not text:
            if empty is None and not optional:
                raise ValidationError(f"{name} is required")
            return empty
        value = int(text)
        if value < minimum:
            raise ValidationError(f"{name} must be at least {minimum}")
        return value

    def request(self) -> LaunchRequest:
        """The form as a LaunchRequest; raises ValidationError naming the bad field."""
        from cliffscope.sweep_layers import check_keep_ratio_layers, parse_layers
        from cliffscope.tasks.registry import parse_set

        kind = str(self.query_one("#kind", Select).value)
        profile = self.query_one("#profile", Select).value
        if profile is Select.BLANK:
            raise ValidationError("no valid profile", hint="create one on the Profiles screen (p)")
        limit = self._int("limit", "limit", 1, optional=True)
        seed = self._int("seed", "seed", 0) or 0
        max_new_tokens = self._int("max-new-tokens", "max tokens", 1, optional=True)
        params: dict = {}
        if kind == "analysis":
            params = {
                "query": self.query_one("#query", Select).value,
                "heads": self.query_one("#heads", Select).value,
                "cam": self.query_one("#cam", Select).value,
                "map_samples": self._int("map-samples", "map samples", 0),
            }
        else:
            ratio_text = self.query_one("#keep-ratio", Input).value.strip()
            ratio = float(ratio_text) if ratio_text else None
            if ratio is not None and not 0.0 <= ratio <= 1.0:
                raise ValidationError("keep ratio must be between 0 and 1")
            layers = parse_layers(self.query_one("#layers", Input).value)
            check_keep_ratio_layers(layers, ratio)
            params = {
                "layers": layers,
                "mode": self.query_one("#mode", Select).value,
                "keep_ratio": ratio,
            }
        params["max_new_tokens"] = max_new_tokens  # None (dropped by new_run): no override
        overrides_text = self.query_one("#overrides", Input).value.split()
        data_path = self.query_one("#data-path", Input).value.strip() or None
        return LaunchRequest(
            kind=kind,
            profile=str(profile),
            task=str(self.query_one("#task", Select).value),
            limit=limit,
            seed=seed,
            params=params,
            task_overrides=parse_set(overrides_text) if overrides_text else {},
            data_path=data_path,
        )

    def _error(self, text: str) -> None:
        self.query_one("#launch-error", Static).update(text)

    @on(Input.Submitted)
    @on(Button.Pressed, "#launch")
    def action_submit(self) -> None:
        try:
            request = self.request()
        except CliffscopeError as exc:
            self._error(exc.render())
            return
        except ValueError as exc:
            self._error(f"error: {exc}")
            return
        self._error("")
        self.query_one("#launch", Button).disabled = True
        self.notify(f"starting {request.kind} of {request.profile} on {request.task}…")
        self._start(request)

    @work(thread=True, exclusive=True, exit_on_error=False)
    def _start(self, request: LaunchRequest) -> None:
        try:
            run_id = self.app.launch_run(request)
        except CliffscopeError as exc:
            self.app.call_from_thread(self._failed, exc.render())
            return
        except Exception as exc:  # noqa: BLE001 - show it in the form, never crash the app
            self.app.call_from_thread(self._failed, f"error: {type(exc).__name__}: {exc}")
            return
        self.app.call_from_thread(self._started, run_id)

    def _failed(self, text: str) -> None:
        self._error(text)
        self.query_one("#launch", Button).disabled = False

    def _started(self, run_id: str) -> None:
        self.app.notify(f"started {run_id}", title="launch")
        self.app.pop_screen()
        runs = self.app.screen
        if hasattr(runs, "select_run"):
            runs.select_run(run_id)

"""Launch: a form for a run of any kind that creates the run and starts a detached worker.

The common fields (profile, task, subset, answer cap) come first; then the fields of the kind
chosen, generated from its typed parameters (`kinds.params`: the same labels, defaults and
choices as its CLI options; strategies and kinds registered at run time included). Values
are checked by the kind's parameter model, the rest (profile, task, subset) by the same
`new_run` the CLI uses; the error is shown in the form.
"""

from __future__ import annotations

from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Header, Input, Label, Select, Static

from cliffscope.errors import CliffscopeError, ValidationError
from cliffscope.kinds.params import ParamField
from cliffscope.kinds.registry import get_kind, kinds
from cliffscope.profiles import check_all, load_profile
from cliffscope.tui import keys
from cliffscope.tui.actions import LaunchRequest
from cliffscope.tui.widgets.footer import KeysFooter

DEFAULT_TASK = "shapes-vqa"


def _row(label: str, widget, classes: str = "") -> Horizontal:
    return Horizontal(Label(label), widget, classes=f"form-row {classes}".strip())


def field_id(kind: str, field: ParamField) -> str:
    return f"{kind}-{field.dom_id}"


def field_widget(kind: str, field: ParamField) -> Select | Input:
    """The form widget of one parameter (a choice list, or a text field), its help text as
    the tooltip."""
    widget = _widget(field_id(kind, field), field)
    widget.tooltip = field.help
    return widget


def _widget(wid: str, field: ParamField) -> Select | Input:
    if field.type in ("choice", "bool"):
        values = field.choices() if field.type == "choice" else [False, True]
        options = [(field.choice_label(v), v) for v in values]
        if field.default is None:
            prompt = field.placeholder or "default"
            return Select(options, id=wid, compact=True, prompt=prompt, allow_blank=True)
        return Select(options, value=field.default, allow_blank=False, id=wid, compact=True)
    kind_of_input = {"int": "integer", "float": "number"}.get(field.type, "text")
    shown = "" if field.default is None or field.type == "text" else str(field.default)
    placeholder = field.placeholder or ("" if field.default is None else f"default {field.default}")
    return Input(shown, type=kind_of_input, id=wid, compact=True, placeholder=placeholder)


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
        self.initial_kind = kind or kinds()[0].name
        self.profiles: dict[str, bool] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="launch-form"):
            choices = [(f"{k.name}: {k.title}", k.name) for k in kinds()]
            yield _row(
                "kind",
                Select(
                    choices, value=self.initial_kind, allow_blank=False, id="kind", compact=True
                ),
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
            for kind in kinds():
                for field in kind.Params.fields(visible=True):
                    yield _row(field.label, field_widget(kind.name, field), f"kind-{kind.name}")
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
        chosen = self.query_one("#kind", Select).value
        for kind in kinds():
            for row in self.query(f".kind-{kind.name}"):
                row.display = kind.name == chosen

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

    def kind_params(self, kind: str) -> dict[str, Any]:
        """The chosen kind's fields as run.toml [params], checked by its parameter model."""
        declared = get_kind(kind)
        raw: dict[str, Any] = {}
        for field in declared.Params.fields(visible=True):
            widget = self.query_one(f"#{field_id(kind, field)}")
            if isinstance(widget, Select):
                if widget.value is not Select.NULL:
                    raw[field.name] = widget.value
            elif text := widget.value.strip():
                raw[field.name] = text
        return declared.Params.parse(raw, naming="label").run_params()

    def request(self) -> LaunchRequest:
        """The form as a LaunchRequest; raises ValidationError naming the bad field."""
        from cliffscope.tasks.registry import parse_set

        kind = str(self.query_one("#kind", Select).value)
        profile = self.query_one("#profile", Select).value
        if profile is Select.NULL:
            raise ValidationError("no valid profile", hint="create one on the Profiles screen (p)")
        limit = self._int("limit", "limit", 1, optional=True)
        seed = self._int("seed", "seed", 0) or 0
        max_new_tokens = self._int("max-new-tokens", "max tokens", 1, optional=True)
        params = self.kind_params(kind)
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

"""Profiles: list, details, validate, new from the template, edit in $EDITOR.

After an edit the file is validated again; an invalid edit is kept on disk (it is the user's
file) and the error, with file, line and key, is shown until it is fixed.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
from pathlib import Path

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Header, Input, Label, Static

from cliffscope import paths
from cliffscope.errors import CliffscopeError, ValidationError
from cliffscope.profiles import Profile, check_all, load_profile, new_profile_text
from cliffscope.tui import keys
from cliffscope.tui.widgets.footer import KeysFooter


def editor_command(path: Path) -> list[str]:
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    return [*shlex.split(editor), str(path)]


class NewProfileDialog(ModalScreen[tuple[str, str] | None]):
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("New profile from the template", classes="dialog-title")
            yield Label("name")
            yield Input(placeholder="e.g. llava-1.5-7b-local", id="new-name")
            yield Label("model (hub id, local path, or builtin:demo)")
            yield Input(value="llava-hf/llava-1.5-7b-hf", id="new-model")
            yield Static("", id="new-error", classes="error")
            yield Static("enter: create   escape: cancel", classes="form-help")

    @on(Input.Submitted)
    def _submit(self) -> None:
        name = self.query_one("#new-name", Input).value.strip()
        model = self.query_one("#new-model", Input).value.strip()
        try:
            new_profile_text(name, model)  # validates the name
        except CliffscopeError as exc:
            self.query_one("#new-error", Static).update(exc.render())
            self.query_one("#new-name", Input).focus()
            return
        self.dismiss((name, model))


class ProfilesScreen(Screen):
    HELP = (
        "Profiles are TOML files: which checkpoint to load and how. The table lists every "
        "profile directory; 'remote code ON' means the checkpoint's own Python code runs. "
        "e opens the highlighted file in $VISUAL/$EDITOR and validates it when you return."
    )
    BINDINGS = [
        keys.BACK,
        keys.HELP,
        Binding("e", "edit", "Edit"),
        Binding("n", "new", "New profile"),
        Binding("v", "validate", "Validate"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.files: list[tuple[Path, ValidationError | None]] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable(id="profiles-table", cursor_type="row", zebra_stripes=True)
        with VerticalScroll(id="profile-detail"):
            yield Static(id="profile-info")
        yield KeysFooter()

    def on_mount(self) -> None:
        self.sub_title = "profiles"
        table = self.query_one(DataTable)
        table.add_columns("name", "valid", "remote code", "family", "dtype", "model")
        self.reload()
        table.focus()

    @property
    def target_dir(self) -> Path:
        return self.app.profiles_dir or paths.user_profiles_dir()

    def reload(self, select: str | None = None) -> None:
        self.files = check_all(self.app.profiles_dir)
        table = self.query_one(DataTable)
        keep = select or self.current_name()
        table.clear()
        for path, error in self.files:
            if error is None:
                p = load_profile(path).profile
                remote = Text("ON", style="bold red") if p.trust_remote_code else Text("off")
                table.add_row(
                    p.name, Text("ok", "green"), remote, p.family, p.dtype, p.model, key=path.stem
                )
            else:
                table.add_row(path.stem, Text("INVALID", "bold red"), "", "", "", "", key=path.stem)
        if keep:
            with contextlib.suppress(Exception):  # it was renamed or removed
                table.move_cursor(row=table.get_row_index(keep), animate=False)
        self.show_detail()

    def current(self) -> tuple[Path, ValidationError | None] | None:
        table = self.query_one(DataTable)
        if not self.files or not (0 <= table.cursor_row < len(self.files)):
            return None
        return self.files[table.cursor_row]

    def current_name(self) -> str | None:
        entry = self.current()
        return entry[0].stem if entry else None

    def show_detail(self) -> None:
        detail = self.query_one("#profile-info", Static)
        entry = self.current()
        if entry is None:
            detail.update(f"no profiles found; n writes a template into {self.target_dir}")
            return
        path, error = entry
        if error is not None:
            detail.update(Text.assemble((f"{path}\n", "bold"), (error.render(), "red")))
            return
        loaded = load_profile(path).profile
        data = loaded.model_dump()
        head = Text(str(path), style="bold")
        if data["trust_remote_code"]:
            head.append(
                "\ntrust_remote_code = true: runs the checkpoint's own Python code", "bold red"
            )
        if data["notes"]:
            head.append(f"\n{data['notes']}", style="italic")
        table = Table(box=None, padding=(0, 1))
        table.add_column("key", style="bold")
        table.add_column("value")
        table.add_column("meaning", style="dim")
        for key, field in Profile.model_fields.items():
            value = Text(loaded.shown(key))
            if key == "trust_remote_code" and data[key]:
                value = Text("true  (runs the checkpoint's own code)", style="bold red")
            table.add_row(key, value, field.description or "")
        detail.update(Group(head, table))

    @on(DataTable.RowHighlighted)
    def _highlighted(self) -> None:
        self.show_detail()

    def action_validate(self) -> None:
        self.reload()
        bad = [p.stem for p, e in self.files if e is not None]
        if bad:
            self.notify(f"invalid: {', '.join(bad)}", title="profiles", severity="error")
        else:
            self.notify(f"{len(self.files)} profiles valid", title="profiles")

    def action_new(self) -> None:
        self.app.push_screen(NewProfileDialog(), self._create)

    def _create(self, answer: tuple[str, str] | None) -> None:
        if not answer:
            return
        name, model = answer
        target = self.target_dir / f"{name}.toml"
        if target.exists():
            self.notify(f"{target} already exists", severity="error")
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(new_profile_text(name, model), encoding="utf-8")
        self.reload(select=name)
        self.notify(f"wrote {target}; press e to edit it", title="profiles")

    def action_edit(self) -> None:
        entry = self.current()
        if entry is None:
            return
        path = entry[0]
        command = editor_command(path)
        from textual.app import SuspendNotSupported

        try:
            with self.app.suspend():
                subprocess.call(command)
        except SuspendNotSupported:  # headless (tests, pipes): no terminal to hand over
            subprocess.call(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        except OSError as exc:
            self.notify(f"cannot start editor {command[0]!r}: {exc}", severity="error")
            return
        self.reload(select=path.stem)
        error = dict(self.files).get(path)
        if error is not None:
            self.notify(
                "the edit is not a valid profile; the file is kept as you left it\n" + error.what,
                title=path.name,
                severity="error",
                timeout=10,
            )
        else:
            self.notify(f"{path.name} is valid", title="profiles")

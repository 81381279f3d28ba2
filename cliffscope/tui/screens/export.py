"""Export: the Markdown report of the chosen runs (the CLI's `cliffscope export`), written in
a thread; the screen then says where it is and shows the Markdown."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Header, Input, Label, Select, Static

from cliffscope.errors import CliffscopeError
from cliffscope.store import RunDir
from cliffscope.tui import keys
from cliffscope.tui.widgets.footer import KeysFooter

FORMAT_CHOICES = [
    ("Markdown + figures", ("md",)),
    ("Markdown, JSON and CSV", ("md", "json", "csv")),
]


class ExportScreen(Screen):
    HELP = (
        "Writes summary.md (one run) or compare.md (several) with figures, as "
        "`cliffscope export` does. Enter in the folder field or ctrl+s starts it."
    )
    BINDINGS = [
        keys.BACK,
        keys.HELP,
        Binding("ctrl+s", "export", "Export"),
    ]

    def __init__(self, run_ids: list[str]) -> None:
        super().__init__()
        self.run_ids = list(run_ids)

    def compose(self) -> ComposeResult:
        from cliffscope.report import default_out_dir

        runs = [RunDir(self.app.store.path_of(i)) for i in self.run_ids]
        default = default_out_dir(runs, now=self.app.now())
        yield Header()
        with VerticalScroll(id="export-body"):
            yield Static(
                Text("export " + ", ".join(self.run_ids), style="bold"), classes="form-help"
            )
            yield Horizontal(
                Label("folder"), Input(str(default), id="out-dir", compact=True), classes="form-row"
            )
            yield Horizontal(
                Label("formats"),
                Select(
                    FORMAT_CHOICES, value=("md",), allow_blank=False, id="formats", compact=True
                ),
                classes="form-row",
            )
            yield Static(
                "enter / ctrl+s: write the report", id="export-status", classes="form-help"
            )
            yield Vertical(id="export-markdown")
        yield KeysFooter()

    def on_mount(self) -> None:
        self.sub_title = "export"
        self.query_one("#out-dir", Input).focus()

    @on(Input.Submitted, "#out-dir")
    def action_export(self) -> None:
        out = Path(self.query_one("#out-dir", Input).value.strip()).expanduser()
        formats = tuple(self.query_one("#formats", Select).value)
        self.query_one("#export-status", Static).update("writing…")
        self._export(out, formats)

    @work(thread=True, exclusive=True, exit_on_error=False)
    def _export(self, out: Path, formats: tuple[str, ...]) -> None:
        from cliffscope.report import export_runs

        try:
            runs = [self.app.store.get(i) for i in self.run_ids]
            result = export_runs(runs, out, formats=formats)
        except CliffscopeError as exc:
            self.app.call_from_thread(self._done, Text(exc.render(), style="red"), "")
            return
        except Exception as exc:  # noqa: BLE001 - report it here rather than crash the app
            self.app.call_from_thread(
                self._done, Text(f"error: {type(exc).__name__}: {exc}", "red"), ""
            )
            return
        status = Text(f"wrote {len(result.files)} files to {result.out_dir}\n", style="green")
        if result.markdown:
            status.append("Markdown: ", style="bold")
            status.append(str(result.markdown), style="bold cyan")
        for warning in result.warnings:
            status.append(f"\nwarning: {warning}", style="yellow")
        markdown = result.markdown.read_text(encoding="utf-8") if result.markdown else ""
        self.app.call_from_thread(self._done, status, markdown)

    def _done(self, status: Text, markdown: str) -> None:
        self.query_one("#export-status", Static).update(status)
        if markdown:
            from textual.widgets import Markdown

            holder = self.query_one("#export-markdown", Vertical)
            holder.remove_children()
            holder.mount(Markdown(markdown))
            self.notify(status.plain.splitlines()[0], title="export")

"""The Samples tab: every sample's answers and, for the selected one, its picture, question,
references and answers, listed the way the run's kind says (`RunKind.samples_view`, e.g.
`tui.sample_views.SweepSamples`: the answer per k and the flips).

Records arrive incrementally from the poller and are only kept here; the table is rebuilt
only while visible and at most `MAX_ROWS` long, so a 50,000-sample run stays responsive.
The picture is looked up in a thread worker (cliffscope.tui.sample_source), never on the UI
thread; until it arrives the text shows on its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Static

from cliffscope.report.overlay import layout, resized
from cliffscope.tui.sample_source import SampleSource, SampleView
from cliffscope.tui.sample_views import PlainSamples
from cliffscope.tui.widgets.picture import Picture

MAX_ROWS = 500


def fit(image: Any, width: int, height: int) -> Any:
    """The image scaled to fit `width` x `height` pixels, aspect kept (an RGB uint8 array)."""
    w, h, _ = layout(image.size, 1, width, height)
    return resized(image, w, h).astype("uint8")


def samples_view(kind: str) -> PlainSamples:
    """A fresh Samples view of run kind `kind` (the plain one for unknown kinds)."""
    from cliffscope.kinds.registry import kind_of, load_target

    found = kind_of(kind)
    return load_target(found.samples_view)() if found is not None else PlainSamples()


class SamplesPane(Vertical):
    BINDINGS = [Binding("f", "toggle_filter", "Only flips/wrong", show=False)]
    SCREEN_KEYS = [Binding("f", "toggle_filter", "Samples: only flips/wrong", show=False)]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.run_kind = ""
        self.view: PlainSamples = PlainSamples()
        self.only_interesting = False
        self.dirty = False
        self.source: SampleSource | None = None
        self.selected: str | None = None
        self._shown: list[str] = []

    def compose(self) -> ComposeResult:
        yield Static(id="samples-note", classes="pane-note")
        with Horizontal(id="samples-body"):
            yield DataTable(id="samples-table", cursor_type="row", zebra_stripes=True)
            with Vertical(id="sample-detail"):
                yield Picture(id="sample-picture")
                with VerticalScroll(id="sample-text-scroll"):
                    yield Static(id="sample-text")

    def reset(self, kind: str) -> None:
        self.run_kind = kind
        self.view = samples_view(kind)
        self.dirty = True

    def set_source(self, run_path: Path, task_snapshot: dict[str, Any] | None) -> None:
        """Where pictures come from (the run dir, else its task rebuilt from run.toml)."""
        self.source = SampleSource(run_path, task_snapshot)
        if self.is_mounted:
            self._detail()

    def add(self, records: list[dict[str, Any]]) -> None:
        for rec in records:
            self.view.add(rec)
        self.dirty = self.dirty or bool(records)

    @property
    def count(self) -> int:
        return len(self.view.samples)

    def _rows(self) -> list[tuple[str, list[Any]]]:
        rows: list[tuple[str, list[Any]]] = []
        for sid, data in self.view.samples.items():
            if self.only_interesting and not self.view.keep(data):
                continue
            rows.append((sid, self.view.cells(sid, data)))
            if len(rows) >= MAX_ROWS:
                break
        return rows

    def render_table(self) -> None:
        """Rebuild the table if new records came in (call while the tab is visible)."""
        if not self.dirty or not self.is_mounted:
            return
        self.dirty = False
        table = self.query_one(DataTable)
        keep = table.cursor_row
        table.clear(columns=True)
        table.add_columns(*self.view.columns)
        rows = self._rows()
        self._shown = [sid for sid, _ in rows]
        for sid, cells in rows:
            table.add_row(*cells, key=sid)
        if rows:
            table.move_cursor(row=min(keep, len(rows) - 1), animate=False)
        what = self.view.interesting
        note = f"{self.count} samples"
        if self.only_interesting:
            note += f", only {what} shown"
        if len(rows) >= MAX_ROWS:
            note += f", first {MAX_ROWS} listed"
        self.query_one("#samples-note", Static).update(note + f"   (f: only {what})")
        self._detail()

    def action_toggle_filter(self) -> None:
        self.only_interesting = not self.only_interesting
        self.dirty = True
        self.render_table()

    @on(DataTable.RowHighlighted)
    def _detail(self) -> None:
        table = self.query_one(DataTable)
        text = self.query_one("#sample-text", Static)
        picture = self.query_one(Picture)
        if not self._shown or not (0 <= table.cursor_row < len(self._shown)):
            self.selected = None
            text.update("")
            picture.show(None)
            return
        sid = self._shown[table.cursor_row]
        self.selected = sid
        view = self.source.cached(sid) if self.source else None
        if view is None and self.source is not None:
            self._load_view(self.source, sid, self._image_file(sid))
        self._show(sid, view)

    def _image_file(self, sid: str) -> Any:
        """The image a sample line names (analysis map samples), if any."""
        return self.view.image_file(self.view.samples.get(sid))

    def _show(self, sid: str, view: SampleView | None) -> None:
        text = self.view.detail(sid, self.view.samples.get(sid), view)
        if view is None:
            text.append("\nloading the picture…", style="dim")
        self.query_one("#sample-text", Static).update(text)
        image = view.image if view is not None else None
        draw = None if image is None else lambda w, h: fit(image, w, h)
        self.query_one(Picture).show(draw, key=(sid, id(image)))

    def move(self, step: int) -> None:
        table = self.query_one(DataTable)
        if table.row_count:
            row = min(max(table.cursor_row + step, 0), table.row_count - 1)
            table.move_cursor(row=row, animate=False)

    @work(thread=True, exclusive=True, group="sample-picture", exit_on_error=False)
    def _load_view(self, source: SampleSource, sid: str, image_file: Any) -> None:
        view = source.get(sid, image_file)
        self.app.call_from_thread(self._view_loaded, source, sid, view)

    def _view_loaded(self, source: SampleSource, sid: str, view: SampleView) -> None:
        if source is self.source and sid == self.selected:
            self._show(sid, view)

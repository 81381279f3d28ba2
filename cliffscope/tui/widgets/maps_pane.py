"""The Maps tab: attention and LLaVA-CAM maps of one sample over its image, layer by layer.

Map files (maps/<id>.json) and images are read in a thread the first time a sample is shown
and kept; changing the layer only re-blends (cliffscope.report.overlay, the same blend the
exported report saves). The picture is drawn in the app's graphics mode (widgets.picture).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from cliffscope.report.mapfile import LoadedMap, load_map
from cliffscope.report.overlay import VIEW_NAMES, blend, colormap, panel_groups, peak
from cliffscope.tui.pane_view import PaneView
from cliffscope.tui.widgets.picture import Picture


def legend(top: float, width: int = 16) -> Text:
    """The colour scale: 0 at the dark end, the drawn peak value at the bright end."""
    values = colormap(np.linspace(0, 1, width)).astype(int)
    text = Text("0 ")
    for r, g, b in values.tolist():
        text.append("█", style=f"rgb({r},{g},{b})")
    text.append(f" {top:.3g}")
    return text


def slider(layers: list[int], current: int, width: int = 16) -> Text:
    """Where `current` sits among `layers`: a track with a knob, first and last at the ends."""
    at = layers.index(current) if current in layers else 0
    knob = round(at * (width - 1) / max(len(layers) - 1, 1))
    text = Text(f"{layers[0]} ", style="dim")
    text.append("━" * knob, style="cyan")
    text.append("●", style="bold cyan")
    text.append("━" * (width - 1 - knob), style="grey42")
    text.append(f" {layers[-1]}", style="dim")
    return text


def graphics_line(app: Any) -> Text:
    mode = getattr(app, "graphics", None)
    label = mode.label if mode is not None else "half-blocks"
    return Text(f"pictures: {label} (g)", style="dim")


class MapsPane(Horizontal, can_focus=True):
    BINDINGS = [
        Binding("left", "layer(-1)", "Layer -", show=False),
        Binding("right", "layer(1)", "Layer +", show=False),
        Binding("up", "sample(-1)", "Sample -", show=False),
        Binding("down", "sample(1)", "Sample +", show=False),
        Binding("t", "toggle_view", "Attention/CAM", show=False),
    ]
    SCREEN_KEYS = [
        Binding("left", "layer(-1)", "Maps: layer down", show=False, priority=True),
        Binding("right", "layer(1)", "Maps: layer up", show=False, priority=True),
        Binding("t", "toggle_view", "Maps: attention/CAM", show=False),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.run_path: Path | None = None
        self.entries: list[dict[str, Any]] = []
        self.map_index = 0
        self.map_layer = 0
        self.map_view = "attention"
        self.source_note = ""
        self._cache: dict[str, LoadedMap] = {}

    def compose(self) -> ComposeResult:
        yield Picture(id="heatmap")
        with Vertical(classes="side"):
            yield Static(id="maps-info")

    def on_mount(self) -> None:
        if hasattr(self.app, "graphics"):
            self.watch(self.app, "graphics", lambda _: self._redraw(), init=False)

    def show(self, run_path: Path | None, result: dict[str, Any] | None, source: str = "") -> None:
        entries = [
            m for m in (result or {}).get("maps") or [] if isinstance(m, dict) and m.get("file")
        ]
        if run_path != self.run_path:
            self._cache.clear()
        self.run_path, self.source_note = run_path, source
        if [e.get("id") for e in entries] != [e.get("id") for e in self.entries]:
            self.entries = entries
            self.map_index = min(self.map_index, max(len(entries) - 1, 0))
        self._redraw()

    def show_view(self, view: PaneView) -> None:
        self.show(view.run.path if view.run else None, view.result, view.note)

    def move(self, step: int) -> None:
        self.action_sample(1 if step > 0 else -1)

    @property
    def current(self) -> dict[str, Any] | None:
        return self.entries[self.map_index] if self.entries else None

    def _redraw(self) -> None:
        entry = self.current
        info = self.query_one("#maps-info", Static)
        picture = self.query_one(Picture)
        if entry is None or self.run_path is None:
            picture.show(None)
            info.update(
                Text(self.source_note + "\nno maps in this run (analysis with cam on writes them)")
            )
            return
        loaded = self._cache.get(str(entry["id"]))
        if loaded is None:
            info.update(f"loading {entry['id']}…")
            self._load(self.run_path, entry)
            return
        layers = loaded.layer_list(self.map_view)
        if not layers:
            picture.show(None)
            info.update(f"{entry['id']}: no {self.map_view} maps")
            return
        if self.map_layer not in layers:
            self.map_layer = min(layers, key=lambda layer: abs(layer - self.map_layer))
        try:
            values = loaded.values(self.map_view, self.map_layer)
        except ValueError as exc:
            picture.show(None)
            info.update(Text(f"{entry['id']}: {exc}", style="red"))
            return
        picture.show(
            lambda w, h: blend(loaded.image, loaded.image_size, loaded.grids, values, w, h),
            key=(id(loaded), self.map_view, self.map_layer),
        )
        info.update(self._info(entry, loaded, layers, peak(values)))

    def _info(self, entry: dict[str, Any], loaded: LoadedMap, layers: list[int], top: float):
        text = Text()
        if self.source_note:
            text.append(self.source_note + "\n", style="italic")
        text.append(f"sample {entry['id']}", style="bold")
        text.append(f"  ({self.map_index + 1}/{len(self.entries)})\n")
        about = loaded.about
        if about.get("question"):
            text.append(f"{about['question']}\n", style="italic")
        if "prediction" in about:
            text.append(f"answer {about['prediction']!r}", style="dim")
            refs = about.get("references") or []
            text.append(f"  ref {refs[0]!r}\n" if refs else "\n", style="dim")
        text.append(VIEW_NAMES[self.map_view], style="bold cyan")
        text.append(f"  layer {self.map_layer}\n")
        text.append_text(slider(layers, self.map_layer))
        text.append("\n")
        text.append_text(legend(top))
        panels = panel_groups(loaded.grids)
        if len(panels) > 1:
            names = [" + ".join(loaded.grids[g].label or "grid" for g in p) for p in panels]
            text.append("\npanels: " + " | ".join(names), style="dim")
        text.append("\n←/→ layer  ↑/↓ sample  t view\n", style="dim")
        text.append_text(graphics_line(self.app))
        return text

    @work(thread=True, exclusive=True, group="maps", exit_on_error=False)
    def _load(self, run_path: Path, entry: dict[str, Any]) -> None:
        try:
            loaded = load_map(run_path, entry)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            self.app.call_from_thread(
                self.query_one("#maps-info", Static).update, Text(f"cannot read map: {exc}", "red")
            )
            return
        self.app.call_from_thread(self._loaded, str(entry["id"]), loaded)

    def _loaded(self, sample_id: str, loaded: LoadedMap) -> None:
        self._cache[sample_id] = loaded
        self._redraw()

    def action_layer(self, step: int) -> None:
        entry = self.current
        loaded = self._cache.get(str(entry["id"])) if entry else None
        layers = loaded.layer_list(self.map_view) if loaded else []
        if layers:
            at = layers.index(self.map_layer) if self.map_layer in layers else 0
            self.map_layer = layers[min(max(at + step, 0), len(layers) - 1)]
        self._redraw()

    def action_sample(self, step: int) -> None:
        if self.entries:
            self.map_index = (self.map_index + step) % len(self.entries)
            self._redraw()

    def action_toggle_view(self) -> None:
        self.map_view = "cam" if self.map_view == "attention" else "attention"
        self._redraw()

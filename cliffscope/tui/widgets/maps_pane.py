"""The Maps tab: attention and LLaVA-CAM maps of one sample over its image, layer by layer.

Map files (maps/<id>.json) and images are read in a thread the first time a sample is shown
and kept; changing the layer only recolours cells.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from cliffscope.tui.widgets.heatmap import HeatmapView, MapGrid, colormap, split_values

VIEWS = ("attention", "cam")


@dataclass
class LoadedMap:
    image: Any | None
    image_size: tuple[int, int]
    grids: list[MapGrid]
    layers: dict[str, dict[int, list]]  # view -> layer -> values (per grid, or flat)
    about: dict[str, Any]  # question, prediction, references when the file has them


def load_map(run_path: Path, entry: dict[str, Any]) -> LoadedMap:
    """Read one map entry of result.json (paths relative to the run dir)."""
    from PIL import Image

    data = json.loads((run_path / str(entry["file"])).read_text(encoding="utf-8"))
    grids = [
        MapGrid(
            int(g["rows"]),
            int(g["cols"]),
            tuple(float(c) for c in g["box"]),
            str(g.get("label", "")),
        )
        for g in data.get("grids", [])
    ]
    image, size = None, (1, 1)
    if entry.get("image"):
        try:
            with Image.open(run_path / str(entry["image"])) as img:
                image = img.convert("RGB")
            size = image.size
        except OSError:
            image = None
    declared = data.get("image_size")
    if isinstance(declared, list) and len(declared) == 2:
        size = (int(declared[0]), int(declared[1]))  # the pixel space the boxes are in
    elif image is None and grids:
        size = (int(max(g.box[2] for g in grids)), int(max(g.box[3] for g in grids)))
    layers = {
        view: {int(k): v for k, v in (data.get(view) or {}).items() if str(k).lstrip("-").isdigit()}
        for view in VIEWS
    }
    about = {k: data[k] for k in ("question", "prediction", "references") if k in data}
    return LoadedMap(image, size, grids, layers, about)


def legend(width: int = 20) -> Text:
    values = colormap(np.linspace(0, 1, width)).astype(int)
    text = Text("low ")
    for r, g, b in values.tolist():
        text.append("█", style=f"rgb({r},{g},{b})")
    text.append(" high")
    return text


class MapsPane(Horizontal, can_focus=True):
    BINDINGS = [
        Binding("left", "layer(-1)", "Layer -", show=False),
        Binding("right", "layer(1)", "Layer +", show=False),
        Binding("up", "sample(-1)", "Sample -", show=False),
        Binding("down", "sample(1)", "Sample +", show=False),
        Binding("t", "toggle_view", "Attention/CAM", show=False),
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
        yield HeatmapView(id="heatmap")
        with Vertical(classes="side"):
            yield Static(id="maps-info")

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

    @property
    def current(self) -> dict[str, Any] | None:
        return self.entries[self.map_index] if self.entries else None

    def _redraw(self) -> None:
        entry = self.current
        info = self.query_one("#maps-info", Static)
        heat = self.query_one(HeatmapView)
        if entry is None or self.run_path is None:
            heat.clear()
            info.update(
                Text(self.source_note + "\nno maps in this run (analysis with cam on writes them)")
            )
            return
        loaded = self._cache.get(str(entry["id"]))
        if loaded is None:
            info.update(f"loading {entry['id']}…")
            self._load(self.run_path, entry)
            return
        layers = sorted(loaded.layers.get(self.map_view) or {})
        if not layers:
            heat.clear()
            info.update(f"{entry['id']}: no {self.map_view} maps")
            return
        self.map_layer = min(max(self.map_layer, layers[0]), layers[-1])
        if self.map_layer not in loaded.layers[self.map_view]:
            self.map_layer = min(layers, key=lambda layer: abs(layer - self.map_layer))
        try:
            values = split_values(loaded.grids, loaded.layers[self.map_view][self.map_layer])
        except ValueError as exc:
            heat.clear()
            info.update(Text(f"{entry['id']}: {exc}", style="red"))
            return
        heat.show(loaded.image, loaded.image_size, loaded.grids, values)
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
        text.append(f"{'LLaVA-CAM' if self.map_view == 'cam' else 'attention'}", style="bold cyan")
        text.append(f"  layer {self.map_layer} of {layers[0]}–{layers[-1]}\n")
        text.append_text(legend())
        text.append("\n←/→ layer  ↑/↓ sample  t view", style="dim")
        info.update(text)

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
        layers = sorted(loaded.layers.get(self.map_view) or {}) if loaded else []
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

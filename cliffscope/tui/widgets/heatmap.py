"""Attention / CAM maps over the sample's image, drawn with coloured half-block cells.

Each terminal cell shows two pixels: "▀" with the upper pixel as foreground colour and the
lower one as background, which works in every true-colour terminal (tmux, SSH) with no
graphics protocol. The picture is the image scaled to fit the widget (aspect kept: half-block
pixels are roughly square) blended with the map of every image grid placed at its box.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

# inferno, 6 stops: dark = low, yellow = high (readable on dark and light themes)
_STOPS = np.array(
    [[0, 0, 4], [40, 11, 84], [101, 21, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]],
    dtype=np.float32,
)
ALPHA = 0.6


def colormap(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] -> RGB float array (..., 3)."""
    v = np.clip(values, 0.0, 1.0) * (len(_STOPS) - 1)
    lo = np.floor(v).astype(int).clip(0, len(_STOPS) - 2)
    frac = (v - lo)[..., None]
    return _STOPS[lo] * (1 - frac) + _STOPS[lo + 1] * frac


@dataclass(frozen=True)
class MapGrid:
    """One image grid of a map file: its token layout and the image box it covers."""

    rows: int
    cols: int
    box: tuple[float, float, float, float]
    label: str = ""


def split_values(grids: list[MapGrid], values: list) -> list[np.ndarray]:
    """A map file's per-layer values as one (rows, cols) array per grid: either one list per
    grid (what the worker writes) or one flat list cut in grid order."""
    if values and all(isinstance(v, list) for v in values):
        if len(values) != len(grids):
            raise ValueError(f"map has {len(values)} grids of values for {len(grids)} grids")
        return [
            np.asarray(v, dtype=np.float32).reshape(g.rows, g.cols)
            for g, v in zip(grids, values, strict=True)
        ]
    out, start = [], 0
    for grid in grids:
        n = grid.rows * grid.cols
        chunk = np.asarray(values[start : start + n], dtype=np.float32)
        if chunk.size != n:
            raise ValueError(f"map has {len(values)} values, grids need more")
        out.append(chunk.reshape(grid.rows, grid.cols))
        start += n
    return out


def compose(
    image: Any | None,
    image_size: tuple[int, int],
    grids: list[MapGrid],
    values: list[np.ndarray],
    width: int,
    height: int,
    alpha: float = ALPHA,
) -> np.ndarray:
    """RGB uint8 array (2*rows, cols, 3) to draw in a widget of `width` x `height` cells."""
    from PIL import Image

    iw, ih = image_size
    scale = min(width / iw, 2 * height / ih)
    ow, oh = max(1, int(iw * scale)), max(1, int(ih * scale))
    if image is not None:
        base = np.asarray(image.convert("RGB").resize((ow, oh), Image.BILINEAR), dtype=np.float32)
    else:
        base = np.full((oh, ow, 3), 96.0, dtype=np.float32)
    peak = max((float(v.max()) for v in values if v.size), default=0.0)
    out = base.copy()
    for grid, grid_values in zip(grids, values, strict=False):
        x0, y0, x1, y1 = (round(c * scale) for c in grid.box)
        x0, y0 = max(0, x0), max(0, y0)
        x1, y1 = min(ow, max(x1, x0 + 1)), min(oh, max(y1, y0 + 1))
        if x1 <= x0 or y1 <= y0:
            continue
        norm = grid_values / peak if peak > 0 else np.zeros_like(grid_values)
        cells = Image.fromarray(norm.astype(np.float32), mode="F").resize(
            (x1 - x0, y1 - y0), Image.NEAREST
        )
        heat = colormap(np.asarray(cells))
        out[y0:y1, x0:x1] = (1 - alpha) * base[y0:y1, x0:x1] + alpha * heat
    if oh % 2:
        out = np.concatenate([out, np.zeros((1, ow, 3), dtype=np.float32)])
    return out.clip(0, 255).astype(np.uint8)


def strips(pixels: np.ndarray) -> list[Strip]:
    """Half-block lines: row pair (2y, 2y+1) becomes terminal line y."""
    lines = []
    for y in range(0, pixels.shape[0], 2):
        top, bottom = pixels[y], pixels[y + 1]
        segments = [
            Segment("▀", Style(color=Color.from_rgb(*a), bgcolor=Color.from_rgb(*b)))
            for a, b in zip(top.tolist(), bottom.tolist(), strict=True)
        ]
        lines.append(Strip(segments, len(segments)))
    return lines


class HeatmapView(Widget):
    """Shows one map (one sample, one layer) over its image; redraws on data or size change."""

    DEFAULT_CSS = "HeatmapView { width: 1fr; height: 1fr; }"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._image: Any | None = None
        self._image_size: tuple[int, int] = (1, 1)
        self._grids: list[MapGrid] = []
        self._values: list[np.ndarray] = []
        self._lines: list[Strip] = []
        self._drawn_for: tuple[int, int] | None = None

    def show(
        self,
        image: Any | None,
        image_size: tuple[int, int],
        grids: list[MapGrid],
        values: list[np.ndarray],
    ) -> None:
        self._image, self._image_size = image, image_size
        self._grids, self._values = grids, values
        self._drawn_for = None
        self.refresh()

    def clear(self) -> None:
        self.show(None, (1, 1), [], [])

    def _draw(self) -> None:
        size = (self.size.width, self.size.height)
        if self._drawn_for == size:
            return
        self._drawn_for = size
        if not self._grids or size[0] < 2 or size[1] < 1:
            self._lines = []
            return
        pixels = compose(self._image, self._image_size, self._grids, self._values, *size)
        self._lines = strips(pixels)

    def render_line(self, y: int) -> Strip:
        self._draw()
        if y < len(self._lines):
            line = self._lines[y]
            pad = self.size.width - line.cell_length
            return line.extend_cell_length(line.cell_length + max(pad, 0))
        return Strip.blank(self.size.width)

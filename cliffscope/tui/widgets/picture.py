"""A picture in the dashboard, drawn at the resolution the terminal allows.

The owner hands `Picture.show` a function `draw(width_px, height_px) -> RGB array` (or None)
and the picture calls it for its current size and graphics mode: in half-block mode each
cell is two pixels ("▀", upper pixel as foreground, lower as background), which works in
every true-colour terminal, tmux and SSH included; in Kitty-graphics or Sixel mode the array is
drawn at the cell area's real pixel size by a textual-image widget. The mode follows the
app's `graphics` attribute (cliffscope.tui.graphics), so `g` switches every picture at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual.containers import Container
from textual.strip import Strip
from textual.widget import Widget

from cliffscope.tui import graphics
from cliffscope.tui.graphics import HALFBLOCK

Draw = Callable[[int, int], "np.ndarray | None"]


def strips(pixels: np.ndarray) -> list[Strip]:
    """Half-block lines: row pair (2y, 2y+1) becomes terminal line y (an odd last row is
    paired with black)."""
    if pixels.shape[0] % 2:
        pad = np.zeros((1, *pixels.shape[1:]), dtype=pixels.dtype)
        pixels = np.concatenate([pixels, pad])
    lines = []
    for y in range(0, pixels.shape[0], 2):
        top, bottom = pixels[y], pixels[y + 1]
        segments = [
            Segment("▀", Style(color=Color.from_rgb(*a), bgcolor=Color.from_rgb(*b)))
            for a, b in zip(top.tolist(), bottom.tolist(), strict=True)
        ]
        lines.append(Strip(segments, len(segments)))
    return lines


class HalfBlocks(Widget):
    """Pixels from `draw(cols, 2 * rows)` as half-block cells; redrawn on data or size change."""

    DEFAULT_CSS = "HalfBlocks { width: 1fr; height: 1fr; }"

    def __init__(self, draw: Draw | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._draw_fn = draw
        self._lines: list[Strip] = []
        self._drawn_for: tuple[int, int] | None = None

    def set_draw(self, draw: Draw | None) -> None:
        self._draw_fn, self._drawn_for = draw, None
        self.refresh()

    def _draw(self) -> None:
        size = (self.size.width, self.size.height)
        if self._drawn_for == size:
            return
        self._drawn_for = size
        pixels = None
        if self._draw_fn is not None and size[0] >= 2 and size[1] >= 1:
            pixels = self._draw_fn(size[0], 2 * size[1])
        self._lines = strips(pixels) if pixels is not None and pixels.size else []

    def render_line(self, y: int) -> Strip:
        self._draw()
        if y < len(self._lines):
            line = self._lines[y]
            pad = self.size.width - line.cell_length
            return line.extend_cell_length(line.cell_length + max(pad, 0))
        return Strip.blank(self.size.width)


class Picture(Container):
    """Shows `draw`'s pixels in the app's graphics mode (half-blocks, Sixel or Kitty)."""

    DEFAULT_CSS = "Picture { width: 1fr; height: 1fr; }"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mode = HALFBLOCK
        self._draw_fn: Draw | None = None
        self._key: object = None
        self._child: Widget | None = None
        self._drawn_for: tuple[int, int] | None = None

    def on_mount(self) -> None:
        if hasattr(self.app, "graphics"):
            self.watch(self.app, "graphics", self._graphics_changed, init=True)
        else:
            self._set_mode(HALFBLOCK)

    def _graphics_changed(self, value: graphics.Graphics) -> None:
        self._set_mode(value.mode)

    def show(self, draw: Draw | None, key: object = None) -> None:
        """Draw this from now on (None: show nothing). A `key` equal to the last one's means
        the same picture: nothing is redrawn (a Sixel re-encode costs tenths of a second).
        Keys may hold `id()`s of objects `draw` closes over: kept alive with it, an id cannot
        be reused by another object while it is the current key."""
        if key is not None and key == self._key and draw is not None:
            return
        self._key = key if draw is not None else None
        self._draw_fn, self._drawn_for = draw, None
        if isinstance(self._child, HalfBlocks):
            self._child.set_draw(draw)
        else:
            self._update_pixels()

    def _set_mode(self, mode: str) -> None:
        if self._child is not None and mode == self.mode:
            return
        if self._child is not None:
            self._child.remove()
        self.mode, self._drawn_for = mode, None
        if mode == HALFBLOCK:
            self._child = HalfBlocks(self._draw_fn)
        else:
            try:
                self._child = graphics.image_widget(mode, classes="pixels")
            except ImportError as exc:  # textual-image missing: the fallback still works
                self.notify(f"no {graphics.LABELS[mode]} here: {exc}", severity="warning")
                self.mode, self._child = HALFBLOCK, HalfBlocks(self._draw_fn)
        self.mount(self._child)
        self.call_after_refresh(self._update_pixels)

    def on_resize(self) -> None:
        self._update_pixels()

    def _update_pixels(self) -> None:
        """Protocol modes: draw at the content area's pixel size and hand the image over."""
        child = self._child
        if child is None or isinstance(child, HalfBlocks) or not child.is_mounted:
            return
        cols, rows = self.content_size.width, self.content_size.height
        if self._drawn_for == (cols, rows):
            return
        self._drawn_for = (cols, rows)
        pixels = None
        cw, ch = graphics.cell_pixels()
        if self._draw_fn is not None and cols >= 2 and rows >= 1:
            pixels = self._draw_fn(cols * cw, rows * ch)
        if pixels is None or not pixels.size:
            child.image = None
            return
        from PIL import Image

        # Explicit cell sizes: textual-image's `auto` sizing leaves its Sixel widget (which
        # has a child) at 0x0 under Textual 8; the pixels were drawn to fit these cells.
        child.styles.width = max(1, round(pixels.shape[1] / cw))
        child.styles.height = max(1, round(pixels.shape[0] / ch))
        child.image = Image.fromarray(pixels)

"""Which way the dashboard draws pictures: Kitty graphics, Sixel, or coloured half-blocks.

textual-image (https://github.com/lnqs/textual-image) draws real pixels over the Kitty
graphics protocol or Sixel. It asks the terminal what it supports when it is imported, and
that only works before Textual takes over the terminal, so `detect()` runs in the `cliffscope`
command before the app starts. tmux and GNU screen pass neither protocol by default (tmux
answers the Sixel query itself, and drops Kitty's escape codes unless `allow-passthrough` is
on), so inside them the dashboard keeps to half-blocks, which work in every true-colour
terminal. `CLIFFSCOPE_GRAPHICS` chooses at start; the `g` key cycles the modes at run time.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cliffscope.errors import ValidationError

HALFBLOCK, SIXEL, KITTY = "halfblock", "sixel", "kitty"
MODES = (HALFBLOCK, SIXEL, KITTY)  # the order `g` cycles through
LABELS = {HALFBLOCK: "half-blocks", SIXEL: "Sixel", KITTY: "Kitty graphics"}
ENV = "CLIFFSCOPE_GRAPHICS"
CHOICES = ("auto", *MODES)


@dataclass(frozen=True)
class Graphics:
    """The mode pictures are drawn in and why (shown in the help screen)."""

    mode: str = HALFBLOCK
    reason: str = "not started on a terminal"

    @property
    def label(self) -> str:
        return LABELS[self.mode]

    def cycled(self) -> Graphics:
        mode = MODES[(MODES.index(self.mode) + 1) % len(MODES)]
        return Graphics(mode, "chosen with g")


def multiplexer(env: Mapping[str, str]) -> str | None:
    """'tmux' or 'screen' when the dashboard runs inside one (tmux's TERM is often screen)."""
    term = env.get("TERM", "")
    if env.get("TMUX") or term.startswith("tmux"):
        return "tmux"
    if env.get("STY") or term.startswith("screen"):
        return "screen"
    return None


def forced(env: Mapping[str, str]) -> str | None:
    """The mode `CLIFFSCOPE_GRAPHICS` asks for (None for auto); a bad value is an error."""
    value = env.get(ENV, "").strip().lower()
    if value in ("", "auto"):
        return None
    if value not in MODES:
        raise ValidationError(
            f"{ENV}={value!r} is not a graphics mode",
            hint=f"use one of {', '.join(CHOICES)}",
        )
    return value


def choose(env: Mapping[str, str], is_tty: bool, found: str | None, problem: str = "") -> Graphics:
    """The mode to use, given what the terminal answered (`found`: sixel, kitty or None)."""
    wanted = forced(env)
    if wanted:
        return Graphics(wanted, f"{ENV}={wanted}")
    if not is_tty:
        return Graphics(HALFBLOCK, "not started on a terminal")
    mux = multiplexer(env)
    if mux:
        return Graphics(
            HALFBLOCK, f"inside {mux}, which passes neither Kitty graphics nor Sixel by default"
        )
    if found in (SIXEL, KITTY):
        return Graphics(found, f"the terminal answered the {LABELS[found]} query")
    if problem:
        return Graphics(HALFBLOCK, problem)
    return Graphics(
        HALFBLOCK, "the terminal answered neither the Kitty graphics nor the Sixel query"
    )


def _library_choice() -> tuple[str | None, str]:
    """Import textual-image, which queries the terminal (Sixel first, then Kitty graphics,
    its own order: Kitty has no Sixel, and terminals that claim both draw Sixel better).
    Returns (sixel, kitty or None; what went wrong, if anything)."""
    try:
        from textual_image import renderable
        from textual_image import widget as _widget  # noqa: F401 - measures the cell now
    except Exception as exc:  # noqa: BLE001 - a broken terminal answer must not stop us
        return None, f"textual-image could not start: {type(exc).__name__}: {exc}"
    if renderable.Image is renderable.SixelImage:
        return SIXEL, ""
    if renderable.Image is renderable.TGPImage:
        return KITTY, ""
    return None, ""


def detect(env: Mapping[str, str] | None = None) -> Graphics:
    """Decide the mode; call before the Textual app starts (it may query the terminal)."""
    env = os.environ if env is None else env
    stdout = sys.__stdout__
    is_tty = bool(stdout and stdout.isatty())
    found, problem = _library_choice() if is_tty else (None, "")
    return choose(env, is_tty, found, problem)


def image_widget(mode: str, **kwargs: Any) -> Any:
    """A textual-image widget drawing in `mode` (sixel or kitty)."""
    from textual_image import widget

    cls = widget.SixelImage if mode == SIXEL else widget.TGPImage
    return cls(**kwargs)


def cell_pixels() -> tuple[int, int]:
    """(width, height) of a terminal cell in pixels, as textual-image measured it."""
    try:
        from textual_image._terminal import get_cell_size  # the size its widgets scale by

        size = get_cell_size()
        return max(1, int(size.width)), max(1, int(size.height))
    except Exception:  # noqa: BLE001 - no terminal: VT340's cell, textual-image's default
        return 10, 20

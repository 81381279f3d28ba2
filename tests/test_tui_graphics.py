"""Picture modes: what the terminal answers decides Kitty graphics / Sixel, tmux and screen
always get half-blocks, `CLIFFSCOPE_GRAPHICS` forces a mode, `g` switches at run time, and
in every mode the picture is the overlay blend at the cell area's pixel size."""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import pty
import re
import select
import struct
import sys
import termios
import time

import numpy as np
import pytest

from cliffscope.errors import ValidationError
from cliffscope.report.overlay import blend
from cliffscope.tui import graphics
from cliffscope.tui.graphics import HALFBLOCK, KITTY, SIXEL, Graphics, choose
from tests.test_tui_support import fake_store, make_app, shows, wait_for

SIZE = (100, 30)
TMUX = {"TMUX": "/tmp/tmux-1000/default,4242,0", "TERM": "screen-256color"}


@pytest.mark.parametrize("found", [SIXEL, KITTY, None])
def test_tmux_and_screen_get_half_blocks_whatever_the_terminal_answers(found) -> None:
    assert choose(TMUX, True, found).mode == HALFBLOCK
    assert "tmux" in choose(TMUX, True, found).reason
    assert choose({"TERM": "tmux-256color"}, True, found).mode == HALFBLOCK
    assert choose({"STY": "1234.pts-0", "TERM": "xterm"}, True, found).mode == HALFBLOCK


def test_the_answer_decides_outside_a_multiplexer() -> None:
    plain = {"TERM": "xterm-256color"}
    assert choose(plain, True, SIXEL) == Graphics(SIXEL, "the terminal answered the Sixel query")
    assert choose(plain, True, KITTY).mode == KITTY
    assert choose(plain, True, None).mode == HALFBLOCK
    assert choose(plain, False, SIXEL).mode == HALFBLOCK  # not a terminal: nothing to ask


def test_the_environment_forces_a_mode_and_rejects_typos() -> None:
    assert choose({**TMUX, graphics.ENV: "sixel"}, True, None).mode == SIXEL
    assert choose({graphics.ENV: "Kitty "}, False, None).mode == KITTY
    assert choose({graphics.ENV: "auto"}, True, KITTY).mode == KITTY
    with pytest.raises(ValidationError, match="not a graphics mode"):
        choose({graphics.ENV: "sixels"}, True, None)


def test_g_cycles_every_mode_back_to_the_start() -> None:
    seen = [Graphics()]
    for _ in graphics.MODES:
        seen.append(seen[-1].cycled())
    assert [g.mode for g in seen] == [HALFBLOCK, SIXEL, KITTY, HALFBLOCK]


DETECT = "from cliffscope.tui import graphics; print('MODE', graphics.detect().mode)"


def _detect_in_pty(
    answer: str | None, extra_env: dict[str, str], rows: int = 30, cols: int = 100
) -> tuple[str, bytes]:
    """Run `graphics.detect()` on a pty whose 'terminal' (this test) answers like a Sixel
    terminal, a Kitty terminal or neither; returns the mode and what was asked."""
    env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "STY", graphics.ENV)}
    env.update({"TERM": "xterm-256color", "PYTHONPATH": os.getcwd(), **extra_env})
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.execve(sys.executable, [sys.executable, "-c", DETECT], env)
    # rows, columns and the window's pixels (10 x 20 pixel cells), as a terminal reports them
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, cols * 10, rows * 20))
    seen = b""
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline and b"MODE" not in seen:
            ready, _, _ = select.select([fd], [], [], 0.05)
            if not ready:
                continue
            try:
                data = os.read(fd, 4096)
            except OSError:
                break
            seen += data
            if b"\x1b[c" in data:  # DA1: a 4 among the attributes means Sixel
                os.write(fd, b"\x1b[?62;4;22c" if answer == SIXEL else b"\x1b[?62;22c")
            query = re.search(rb"\x1b_Gi=(\d+),s=1,v=1,a=q", data)
            if query and answer == KITTY:
                os.write(fd, b"\x1b_Gi=" + query.group(1) + b";OK\x1b\\")
        time.sleep(0.2)
        with contextlib.suppress(OSError):
            seen += os.read(fd, 4096)
    finally:
        os.waitpid(pid, 0)
        os.close(fd)
    match = re.search(rb"MODE (\w+)", seen)
    return (match.group(1).decode() if match else ""), seen


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pty")
@pytest.mark.parametrize(
    ("answer", "env", "mode"),
    [
        (SIXEL, {}, SIXEL),
        (KITTY, {}, KITTY),
        (None, {}, HALFBLOCK),
        (SIXEL, TMUX, HALFBLOCK),  # tmux 3.4+ may answer Sixel itself: still the fallback
        (KITTY, TMUX, HALFBLOCK),
    ],
)
def test_detect_asks_the_real_terminal(answer, env, mode) -> None:
    got, asked = _detect_in_pty(answer, env)
    assert got == mode, asked
    assert b"\x1b[c" in asked  # textual-image sent its Sixel query


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pty")
def test_a_terminal_without_a_size_falls_back_instead_of_failing() -> None:
    got, asked = _detect_in_pty(SIXEL, {}, rows=0, cols=0)  # textual-image divides by columns
    assert got == HALFBLOCK, asked


def _pixels_of(picture) -> tuple[int, int]:
    cw, ch = graphics.cell_pixels()
    return picture.content_size.width * cw, picture.content_size.height * ch


async def test_maps_tab_in_protocol_modes_draws_the_blend_at_pixel_size(tmp_path) -> None:
    from textual_image.renderable import tgp

    store = fake_store(tmp_path / "runs")
    analysis = next(r for r in store.list() if r.kind == "analysis")
    sent: list[dict] = []
    app = make_app(tmp_path / "runs", graphics=Graphics(KITTY, "test"))
    original = tgp._send_tgp_message
    tgp._send_tgp_message = lambda payload=None, **kw: sent.append({**kw, "payload": payload})
    try:
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.loaded)
            app.open_run(analysis.id)
            await pilot.pause(0.3)
            await pilot.press("2")
            await wait_for(pilot, shows(pilot, "sample s-000000"), what="map loaded")
            await wait_for(pilot, lambda: any(m.get("a") == "p" for m in sent), what="placed")
            maps = app.screen.query_one("MapsPane")
            picture = app.screen.query_one("#heatmap")
            assert type(picture._child).__name__ == "TGPImage"
            loaded = maps._cache["s-000000"]
            values = loaded.values("attention", maps.map_layer)
            want = blend(
                loaded.image, loaded.image_size, loaded.grids, values, *_pixels_of(picture)
            )
            assert np.array_equal(np.asarray(picture._child.image), want)
            assert want.shape[0] == picture.content_size.height * graphics.cell_pixels()[1]
            placement = next(m for m in sent if m.get("a") == "p")
            assert placement["r"] == picture.content_size.height  # the image fills the height
            await pilot.press("g")  # kitty -> half-blocks
            await wait_for(pilot, lambda: type(picture._child).__name__ == "HalfBlocks")
            await pilot.press("g")  # half-blocks -> sixel
            await wait_for(pilot, lambda: type(picture._child).__name__ == "Image")
            await pilot.pause(0.3)
            (sixel,) = list(picture._child.walk_children())
            strips = sixel.render_lines(sixel.region.reset_offset)
            text = "".join(seg.text for seg in strips[-1])
            assert len(re.findall(r"\x1bP[^\x1b]*\x1b\\", text)) == 1  # one whole DCS
            # the raster is the blend's size rounded to whole cells (textual-image scales by
            # less than a cell to get there)
            cw, ch = graphics.cell_pixels()
            width, height = sixel.content_size.width * cw, sixel.content_size.height * ch
            assert abs(width - want.shape[1]) < cw and abs(height - want.shape[0]) < ch
            assert f'"1;1;{width};{height}' in text
    finally:
        tgp._send_tgp_message = original


async def test_help_says_which_mode_draws_pictures_and_lists_g(tmp_path) -> None:
    from rich.console import Console

    from cliffscope.tui.screens.help import HelpScreen, bindings_table

    store = fake_store(tmp_path / "runs")
    sweep = next(r for r in store.list() if r.kind == "sweep")
    reason = "inside tmux, which passes neither Kitty graphics nor Sixel by default"
    app = make_app(tmp_path / "runs", graphics=Graphics(HALFBLOCK, reason))
    async with app.run_test(size=(100, 40)) as pilot:
        await wait_for(pilot, lambda: app.loaded)
        app.open_run(sweep.id)
        await pilot.pause(0.3)
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        text = " ".join(str(s.render()) for s in app.screen.query("Static"))
        assert f"Pictures are drawn with half-blocks ({reason})" in " ".join(text.split())
        console = Console(width=100, record=True, file=io.StringIO())
        console.print(bindings_table(app.screen.below))
        keys = console.export_text()
        assert re.search(r"\bg\s+Pictures: Kitty/Sixel/half-blocks", keys), keys

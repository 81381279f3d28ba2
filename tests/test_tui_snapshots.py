"""Snapshots of the main screens on deterministic fake runs (fixed ids, times and clock).

Paths are relative (the test runs inside its tmp dir) so no machine-specific path shows up.
Update after an intended change with `pytest tests/test_tui_snapshots.py --snapshot-update`
and look at the report before committing.
"""

from __future__ import annotations

import shutil

import pytest

from cliffscope import paths
from cliffscope.tui.screens.launch import LaunchScreen
from cliffscope.tui.screens.profiles import ProfilesScreen
from cliffscope.tui.screens.run_view import RunViewScreen
from tests.test_tui_support import fake_store, make_app, wait_for

SIZE = (100, 30)
ANALYSIS = "20260102-030405-analysis-demo-llava-shapes-vqa-0001"
SWEEP = "20260102-031405-sweep-demo-llava-shapes-vqa-0002"
# Pictures are drawn with half-blocks here: the app is not on a terminal (graphics.detect).


@pytest.fixture
def app(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fake_store(tmp_path / "runs")
    (tmp_path / "profiles").mkdir()
    shutil.copy(paths.BUILTIN_PROFILES_DIR / "demo.toml", tmp_path / "profiles" / "demo.toml")
    shutil.copy(
        paths.BUILTIN_PROFILES_DIR / "llava-1.5-7b.toml",
        tmp_path / "profiles" / "llava-1.5-7b.toml",
    )
    return make_app("runs", "profiles")


async def _loaded(pilot) -> None:
    await wait_for(
        pilot,
        lambda: (
            pilot.app.loaded
            and pilot.app.screen.query("RunsTable")
            and len(pilot.app.screen.table.shown) == 3
        ),
    )


def _open(run_id: str, tab: str | None = None, ready=None):
    async def run_before(pilot) -> None:
        await _loaded(pilot)
        pilot.app.open_run(run_id)
        await wait_for(
            pilot,
            lambda: (
                isinstance(pilot.app.screen, RunViewScreen)
                and pilot.app.screen.run_data is not None
            ),
        )
        screen = pilot.app.screen
        await wait_for(pilot, lambda: screen.run_data.result is not None and screen.partners)
        if tab:
            await pilot.press(tab)
        if ready:
            await wait_for(pilot, lambda: ready(pilot.app.screen))
        await pilot.pause(0.2)

    return run_before


def test_runs_screen(app, snap_compare) -> None:
    assert snap_compare(app, terminal_size=SIZE, run_before=_loaded)


def test_runs_screen_80x24(app, snap_compare) -> None:
    assert snap_compare(app, terminal_size=(80, 24), run_before=_loaded)


def test_flow_tab(app, snap_compare) -> None:
    assert snap_compare(app, terminal_size=SIZE, run_before=_open(ANALYSIS))


def test_maps_tab(app, snap_compare) -> None:
    ready = lambda s: "sample s-000000" in str(s.query_one("#maps-info").render())  # noqa: E731
    assert snap_compare(app, terminal_size=SIZE, run_before=_open(ANALYSIS, "2", ready))


def test_sweep_tab(app, snap_compare) -> None:
    assert snap_compare(app, terminal_size=SIZE, run_before=_open(SWEEP))


def _picture_ready(screen, where: str) -> bool:
    table = screen.query("#samples-table")
    text = str(screen.query_one("#sample-text").render()) if table else ""
    return bool(table) and table.first().row_count == 20 and where in text


def test_samples_tab(app, snap_compare) -> None:
    """A sweep sample: its picture redrawn from the task, question, answers per k, flips."""
    ready = lambda s: _picture_ready(s, "redrawn from task")  # noqa: E731
    assert snap_compare(app, terminal_size=SIZE, run_before=_open(SWEEP, "4", ready))


def test_samples_tab_analysis(app, snap_compare) -> None:
    """An analysis map sample: the run's own image, the answer and the masses per layer."""
    ready = lambda s: _picture_ready(s, "image from images/")  # noqa: E731
    assert snap_compare(app, terminal_size=SIZE, run_before=_open(ANALYSIS, "4", ready))


def test_compare_screen(app, snap_compare) -> None:
    async def run_before(pilot) -> None:
        await _loaded(pilot)
        await pilot.press("down", "space", "space", "c")
        await wait_for(
            pilot,
            lambda: (
                pilot.app.screen.query("#compare-table")
                and pilot.app.screen.query_one("#compare-table").row_count == 2
            ),
        )
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_profiles_screen(app, snap_compare) -> None:
    async def run_before(pilot) -> None:
        await _loaded(pilot)
        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ProfilesScreen))

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_launch_screen(app, snap_compare) -> None:
    async def run_before(pilot) -> None:
        await _loaded(pilot)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, LaunchScreen))
        await wait_for(pilot, lambda: len(pilot.app.screen.query_one("#task")._options) > 2)
        await pilot.press("enter", "down", "enter")  # sweep: its own fields show

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_help_screen(app, snap_compare) -> None:
    async def run_before(pilot) -> None:
        await _loaded(pilot)
        await pilot.press("question_mark")

    assert snap_compare(app, terminal_size=(100, 40), run_before=run_before)

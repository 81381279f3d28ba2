"""The dashboard driving real detached worker processes: launch from the keyboard, watch it
fill in, cancel and resume, quit while it runs and find it again.

Most tests use the fake worker of test_tui_support (a real process started by the real
`launch()`, computing nothing); the last one runs the demo model end to end when it exists.
"""

from __future__ import annotations

import shutil
from importlib.util import find_spec
from pathlib import Path

import pytest

from cliffscope import paths
from cliffscope.store import RunDir, RunStore
from cliffscope.tui.screens.launch import LaunchScreen
from cliffscope.tui.screens.run_view import RunViewScreen
from cliffscope.tui.widgets.runs_table import RunsTable
from tests.fake_runs import make_sweep_run
from tests.test_tui_support import fake_worker, make_app, wait_for

SIZE = (100, 30)
DEMO_PROFILE = paths.BUILTIN_PROFILES_DIR / "demo.toml"


@pytest.fixture
def profiles(tmp_path: Path) -> Path:
    directory = tmp_path / "profiles"
    directory.mkdir()
    shutil.copy(DEMO_PROFILE, directory / "demo.toml")
    return directory


async def test_launch_sweep_from_keyboard_and_watch_it(tmp_path, monkeypatch, profiles) -> None:
    fake_worker(tmp_path, monkeypatch)
    monkeypatch.setenv("FAKE_WORKER_DELAY", "0.8")
    app = make_app(tmp_path / "runs", profiles)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.loaded)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, LaunchScreen))
        await pilot.press("enter", "down", "enter")  # kind: sweep
        await pilot.press("tab", "tab", "tab", "4")  # profile (demo), task (shapes-vqa), limit 4
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: len(app.runs) == 1, what="the launched run in the table")
        row = app.runs[0]
        assert (row.kind, row.profile, row.task) == ("sweep", "demo", "shapes-vqa")
        assert len(RunDir(row.path).spec["subset"]["ids"]) == 4  # the limit typed in the form
        assert isinstance(app.screen.query_one(RunsTable), RunsTable)
        await wait_for(pilot, lambda: app.query_one(RunsTable).cursor_run_id == row.id)
        await pilot.press("enter")
        await wait_for(
            pilot,
            lambda: isinstance(app.screen, RunViewScreen) and app.screen.query("#sweep-table"),
        )
        table = app.screen.query_one("#sweep-table")
        seen: set[int] = set()

        def finished() -> bool:
            seen.add(table.row_count)
            return table.row_count == 5 and app.row(row.id).status == "done"

        await wait_for(pilot, finished, timeout=30, what="sweep done in the view")
        assert len(seen - {0}) >= 2, f"never saw the table grow: {seen}"
        assert app.screen.query_one("SweepPlot").series["score"][0] == [0, 1, 2, 3, 4]


async def test_cancel_and_resume_from_the_ui(tmp_path, monkeypatch) -> None:
    fake_worker(tmp_path, monkeypatch)
    monkeypatch.setenv("FAKE_WORKER_DELAY", "0.4")
    store = RunStore(tmp_path / "runs")
    run = make_sweep_run(store, ks=[], status="queued")
    app = make_app(tmp_path / "runs")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.row(run.id) is not None)
        await pilot.press("u")  # a queued run without a worker: start it
        await wait_for(
            pilot, lambda: app.row(run.id).status == "running" and app.row(run.id).done >= 1
        )
        await pilot.press("x")
        await wait_for(pilot, lambda: app.row(run.id).status == "cancelled", what="cancelled")
        stopped_at = len(run.result()["points"])
        assert stopped_at < 5
        await pilot.press("u")
        await wait_for(
            pilot, lambda: app.row(run.id).status == "done", timeout=30, what="resumed to done"
        )
    ks = [p["k"] for p in run.result()["points"]]
    assert ks == [0, 1, 2, 3, 4]  # resumed where it stopped: no k done twice
    statuses = [e["status"] for e in run.events() if e["type"] == "status"]
    assert statuses.count("running") == 2 and "cancelled" in statuses and statuses[-1] == "done"


async def test_quit_leaves_worker_running_and_reopen_finds_it(tmp_path, monkeypatch) -> None:
    fake_worker(tmp_path, monkeypatch)
    monkeypatch.setenv("FAKE_WORKER_DELAY", "0.5")
    store = RunStore(tmp_path / "runs")
    run = make_sweep_run(store, ks=[], status="queued")
    app = make_app(tmp_path / "runs")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.row(run.id) is not None)
        await pilot.press("u")
        await wait_for(pilot, lambda: app.row(run.id).status == "running")
        await pilot.press("q")
    assert RunDir(run.path).is_locked(), "the worker died with the dashboard"
    again = make_app(tmp_path / "runs")
    async with again.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: again.row(run.id) is not None)
        assert again.row(run.id).status in {"running", "done"}
        await wait_for(pilot, lambda: again.row(run.id).status == "done", timeout=30)


@pytest.mark.slow
async def test_real_sweep_worker_on_a_tiny_model(tmp_path, tiny_llava_path) -> None:
    """The real worker (torch, the sweep engine) on a 3-layer random LLaVA: launched from the
    form with --limit 4, watched in the table and the Sweep tab until done."""
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "tiny.toml").write_text(
        f'name = "tiny"\nfamily = "llava"\nmodel = "{tiny_llava_path}"\ndtype = "float32"\n'
        "batch_size = 4\nmax_new_tokens = 2\n",
        encoding="utf-8",
    )
    app = make_app(tmp_path / "runs", profiles)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.loaded)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, LaunchScreen))
        await pilot.press("enter", "down", "enter", "tab", "tab", "tab", "4", "ctrl+s")
        await wait_for(pilot, lambda: len(app.runs) == 1, timeout=60, what="run created")
        run_id = app.runs[0].id
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunViewScreen))
        await wait_for(
            pilot,
            lambda: app.row(run_id).status in {"done", "failed"},
            timeout=300,
            what="the worker to finish",
        )
        assert app.row(run_id).status == "done", app.row(run_id).error
        table = app.screen.panes["sweep"].query_one("#sweep-table")
        await wait_for(pilot, lambda: table.row_count == 4, what="k = 0..3 in the table")
        assert app.screen.panes["sweep"].query_one("SweepPlot").series["score"][0] == [0, 1, 2, 3]


def _demo_ready() -> str | None:
    if find_spec("cliffscope.worker.sweep_job") is None:
        return "the sweep worker job (cliffscope.worker.sweep_job) is not written yet"
    weights = paths.PACKAGE_DIR / "demo" / "weights"
    if not weights.is_dir() or not any(weights.iterdir()):
        return "the demo model weights (cliffscope/demo/weights) are not built yet"
    return None


@pytest.mark.slow
@pytest.mark.skipif(_demo_ready() is not None, reason=str(_demo_ready()))
async def test_demo_sweep_end_to_end(tmp_path, profiles) -> None:
    """The real worker on the demo model: launched from the form, watched to the end."""
    app = make_app(tmp_path / "runs", profiles)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.loaded)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, LaunchScreen))
        await pilot.press("enter", "down", "enter", "tab", "tab", "tab", "4")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: len(app.runs) == 1, timeout=30)
        run_id = app.runs[0].id
        app.open_run(run_id)
        await wait_for(pilot, lambda: app.row(run_id).status in {"done", "failed"}, timeout=300)
        assert app.row(run_id).status == "done", app.row(run_id).error
        await wait_for(
            pilot,
            lambda: len(app.screen.query_one("SweepPlot").series.get("score", ([], []))[0]) > 1,
        )

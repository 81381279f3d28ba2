"""Concurrency: two sweeps at once on different runs, with the dashboard open while both
workers write, and one of them dying of a (simulated) CUDA out-of-memory error.

Also: `runs rm` refuses a run whose worker is alive. Two racing `runs resume` calls on one run
are in `test_reliability_resume.py` (one wins, the other is told the run is locked).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cliffscope.store import RunStatus
from cliffscope.worker.launch import launch, mark_resumable
from cliffscope.worker.runner import run_worker
from tests.test_reliability_support import (
    LIMIT,
    assert_same_as_reference,
    make_run,
    reference,
    write_profile,
)


@pytest.mark.slow
async def test_two_sweeps_at_once_under_the_dashboard(
    tmp_path: Path, tiny_llava_path: Path, monkeypatch
) -> None:
    from tests.test_tui_support import make_app

    runs, profiles = tmp_path / "runs", tmp_path / "profiles"
    write_profile(profiles, tiny_llava_path)
    reference("sweep", str(tiny_llava_path))  # before the app: it computes in this thread
    failing, healthy = make_run(runs, profiles, "sweep"), make_run(runs, profiles, "sweep")
    app = make_app(runs, profiles)
    workers: list = []
    try:
        await watch_two_sweeps(app, workers, failing, healthy, monkeypatch)
    finally:
        for worker in workers:  # never leave a worker behind, even when the test failed
            if worker.poll() is None:
                worker.kill()
            worker.wait(timeout=60)
    assert_same_as_reference(healthy, "sweep", tiny_llava_path)
    assert len(failing.samples()) == 2 * 5 and failing.status is RunStatus.FAILED
    mark_resumable(failing)
    assert run_worker(failing.path) == 0
    assert_same_as_reference(failing, "sweep", tiny_llava_path)


async def watch_two_sweeps(app, workers: list, failing, healthy, monkeypatch) -> None:
    from cliffscope.tui.capture import screen_text
    from cliffscope.tui.screens.run_view import RunViewScreen
    from tests.test_tui_support import tab_key, wait_for

    async with app.run_test(size=(160, 40)) as pilot:
        await wait_for(pilot, lambda: app.loaded and len(app.runs) == 2)
        monkeypatch.setenv("CLIFFSCOPE_FAULT", "oom@batch:2")  # inherited by this worker only
        workers.append(launch(failing.path))
        monkeypatch.delenv("CLIFFSCOPE_FAULT")
        workers.append(launch(healthy.path))
        app.open_run(healthy.id)
        await wait_for(pilot, lambda: isinstance(app.screen, RunViewScreen))
        await pilot.press(tab_key(app.screen, "samples"))  # redrawn as lines arrive
        seen: set[tuple[str, int]] = set()  # the healthy run's (status, done) at each poll

        def both_finished() -> bool:
            row = app.row(healthy.id)
            seen.add((row.status, row.done))
            return app.row(failing.id).status == "failed" and app.row(healthy.id).status in {
                "done",
                "failed",
            }

        await wait_for(pilot, both_finished, timeout=420, what="both workers to finish")
        samples = app.screen.query_one("SamplesPane")
        await wait_for(pilot, lambda: samples.count == LIMIT, what="every sample in the view")
        assert app.row(healthy.id).status == "done", app.row(healthy.id).error
        # watched it move: polls land at whatever count the worker reached, so any partial one
        assert any(status == "running" and 0 < done < LIMIT for status, done in seen), seen
        assert app.screen.query_one("#sweep-table").row_count == 4  # k = 0..3
        await pilot.press("escape")
        app.screen.select_run(failing.id)
        await wait_for(pilot, lambda: "CUDA out of memory" in screen_text(app))
        row = app.row(failing.id)
        assert "OutOfMemoryError" in row.error and "batch_size" in row.hint
        assert row.done == 2  # what it finished is still shown
    assert failing.result()["complete"] is False and failing.result()["n_samples"] == 2


HOLDER = """
import sys, time
from cliffscope.store import lock as run_lock
lock = run_lock.acquire(sys.argv[1])
print("ready", flush=True)
time.sleep(120)
"""


def test_rm_refuses_a_run_with_a_live_worker(tmp_path: Path, capsys) -> None:
    """`runs rm` (even with --yes) leaves a live run alone; once its worker is gone it goes."""
    from cliffscope.cli.main import main
    from cliffscope.store import RunStore
    from tests.fake_runs import make_sweep_run

    runs = tmp_path / "runs"
    run = make_sweep_run(RunStore(runs), seed=3, status="running", ks=[0])
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(run.path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(SystemExit) as refused:
            main(["--runs-dir", str(runs), "runs", "rm", "--yes", run.id])
        text = capsys.readouterr().err
        assert refused.value.code == 1 and "live worker" in text and "runs cancel" in text
        assert (run.path / "run.toml").is_file() and run.status is RunStatus.RUNNING
    finally:
        holder.kill()
        holder.wait()
    assert run.status is RunStatus.INTERRUPTED
    with pytest.raises(SystemExit) as removed:
        main(["--runs-dir", str(runs), "runs", "rm", "--yes", run.id])
    assert removed.value.code == 0 and not run.path.exists()

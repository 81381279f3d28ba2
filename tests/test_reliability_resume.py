"""Crash and resume: a worker killed with SIGKILL mid-run, or cancelled, or killed before it
wrote anything, is resumed with `cliffscope runs resume`, and the final result.json and every
sample line equal those of an uninterrupted run on the same subset.

The runs go the real way: `cliffscope analyze|sweep --detach` in a subprocess starts a detached
worker; `CLIFFSCOPE_FAULT="hang@batch:3"` parks that worker at its third batch so the kill
always lands mid-run (never after the end), then the test kills it from outside, as an OOM
killer or a dropped node would.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from cliffscope.aggregate.analysis import aggregate as aggregate_analysis
from cliffscope.aggregate.sweep import aggregate as aggregate_sweep
from cliffscope.cli.main import cli
from cliffscope.store import RunDir, RunStatus, RunStore
from tests.fake_runs import make_analysis_run, make_sweep_run
from tests.test_reliability_support import (
    LIMIT,
    ROOT,
    assert_same,
    assert_same_as_reference,
    cli_args,
    cli_env,
    cliffscope,
    count_lines,
    kill_worker,
    lines_by_key,
    make_run,
    wait_until,
    write_profile,
)

HANG = cli_env(CLIFFSCOPE_FAULT="hang@batch:3")


@pytest.fixture
def dirs(tmp_path: Path, tiny_llava_path: Path):
    write_profile(tmp_path / "profiles", tiny_llava_path)
    yield tmp_path / "runs", tmp_path / "profiles"
    for run in RunStore(tmp_path / "runs").list():  # a failed test leaves no worker behind
        if run.is_locked():
            kill_worker(run)


def start_detached(dirs: tuple[Path, Path], kind: str, lines: int = 1) -> RunDir:
    """`cliffscope analyze|sweep ... --detach` with the worker parked at its third batch;
    returns once `lines` sample lines are on disk (the worker may still be computing)."""
    runs, profiles = dirs
    command = "analyze" if kind == "analysis" else "sweep"
    extra = ["--map-samples", "2"] if kind == "analysis" else []
    out = cliffscope(
        runs,
        profiles,
        command,
        "-p",
        "tiny",
        "-t",
        "shapes-vqa",
        "--limit",
        str(LIMIT),
        *extra,
        "--detach",
        env=HANG,
    )
    assert out.returncode == 0, out.stderr
    run = RunDir(runs / out.stdout.strip().splitlines()[-1])
    wait_until(lambda: count_lines(run) >= lines, 180, f"{lines} sample lines")
    assert run.status is RunStatus.RUNNING
    return run


def statuses(run: RunDir) -> list[str]:
    return [e["status"] for e in run.events() if e.get("type") == "status"]


@pytest.mark.slow
def test_kill_9_mid_sweep_then_racing_resumes(dirs, tiny_llava_path: Path) -> None:
    """SIGKILL mid-sweep reads as interrupted; of two `runs resume` at once one wins and the
    other is told the run is locked; the winner's result equals an uninterrupted sweep."""
    runs, profiles = dirs
    run = start_detached(dirs, "sweep")
    kill_worker(run)
    assert run.status is RunStatus.INTERRUPTED
    before = lines_by_key(run)
    assert 1 <= len(before) < LIMIT * 5

    command = cli_args(runs, profiles, "runs", "resume", run.id, "--detach")
    racers = [
        subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(),
            cwd=ROOT,
        )
        for _ in range(2)
    ]
    outcomes = [(p.wait(timeout=120), *p.communicate()) for p in racers]
    codes = sorted(code for code, _, _ in outcomes)
    assert codes == [0, 1], outcomes
    winner = next(o for o in outcomes if o[0] == 0)
    loser = next(o for o in outcomes if o[0] == 1)
    assert winner[1].strip() == run.id
    assert "locked" in loser[2] and "Traceback" not in loser[2], loser[2]

    wait_until(lambda: run.status.finished, 240, "the resumed sweep to finish", poll=0.2)
    assert run.status is RunStatus.DONE, run.events()[-3:]
    after = lines_by_key(run)
    assert all(after[key] == line for key, line in before.items())  # nothing lost or redone
    assert_same_as_reference(run, "sweep", tiny_llava_path)
    assert statuses(run) == ["queued", "running", "running", "done"]


@pytest.mark.slow
def test_analysis_cancelled_then_killed_then_resumed(dirs, tiny_llava_path: Path) -> None:
    """`runs cancel`, `runs resume`, SIGKILL of the resumed worker, `runs resume` again: the
    result equals an uninterrupted analysis, and no finished line was lost or recomputed."""
    runs, profiles = dirs
    run = start_detached(dirs, "analysis", lines=4)  # parked before batch 3 of 4
    cancelled = CliRunner().invoke(cli, ["--runs-dir", str(runs), "runs", "cancel", run.id])
    assert cancelled.exit_code == 0, cancelled.output
    assert run.status is RunStatus.CANCELLED and not run.is_locked()
    partial = run.result()
    assert partial["complete"] is False and partial["n_samples"] == count_lines(run) == 4

    # the resumed worker does batch 3 and parks before batch 4: kill it there
    parked = cli_env(CLIFFSCOPE_FAULT="hang@batch:2")
    out = cliffscope(runs, profiles, "runs", "resume", run.id, "--detach", env=parked)
    assert out.returncode == 0, out.stderr
    wait_until(lambda: count_lines(run) >= 6, 180, "batch 3 of the resumed worker")
    kill_worker(run)
    listed = CliRunner().invoke(cli, ["--runs-dir", str(runs), "runs", "list", "--json"])
    assert json.loads(listed.output)[0]["status"] == "interrupted"
    before = lines_by_key(run)

    resumed = cliffscope(runs, profiles, "runs", "resume", run.id)  # follows to the end
    assert resumed.returncode == 0, resumed.stderr
    assert f"{run.id}: done" in resumed.stdout
    after = lines_by_key(run)
    assert all(after[key] == line for key, line in before.items())
    assert_same_as_reference(run, "analysis", tiny_llava_path)
    assert statuses(run) == ["queued", "running", "cancelled", "running", "running", "done"]
    for entry in run.result()["maps"]:  # the maps of the first batch survived it all
        assert (run.path / entry["file"]).is_file() and (run.path / entry["image"]).is_file()


@pytest.mark.slow
def test_worker_killed_before_it_wrote_anything(dirs, tiny_llava_path: Path) -> None:
    from cliffscope.worker.launch import launch, mark_resumable
    from cliffscope.worker.runner import run_worker

    runs, profiles = dirs
    run = make_run(runs, profiles, "sweep")
    proc = launch(run.path, detach=True)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert not run.is_locked()
    assert run.status in {RunStatus.QUEUED, RunStatus.INTERRUPTED}  # never `running`
    assert run.samples() == [] and run.result() is None
    mark_resumable(run)
    assert run_worker(run.path) == 0
    assert_same_as_reference(run, "sweep", tiny_llava_path)


def _shuffled(lines: list[dict], seed: int) -> list[dict]:
    out = list(lines)
    random.Random(seed).shuffle(out)
    return out


def test_aggregates_do_not_depend_on_line_order(tmp_path: Path) -> None:
    """Resumed runs and data-parallel shards append lines in another order than one
    uninterrupted process; the intervals (seeded bootstrap) must not notice."""
    store = RunStore(tmp_path)
    analysis = make_analysis_run(store, n_samples=30)
    lines = analysis.samples()

    def numbers(result: dict) -> dict:  # `maps` only lists files (in line order, for display)
        return {**result, "updated": None, "maps": sorted(m["id"] for m in result["maps"])}

    expected = numbers(aggregate_analysis(lines, 8, {}))
    for seed in (0, 1):
        assert_same(numbers(aggregate_analysis(_shuffled(lines, seed), 8, {})), expected)
    sweep = make_sweep_run(store, seed=3, n_samples=30)
    lines = sweep.samples()
    kw = {"layers": sweep.result()["layers"], "num_layers": 8, "metric": "exact_match"}
    expected = aggregate_sweep(lines, **kw)
    for seed in (0, 1):
        assert_same(
            {**aggregate_sweep(_shuffled(lines, seed), **kw), "updated": None},
            {**expected, "updated": None},
        )

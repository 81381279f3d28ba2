"""Data-parallel runs: `--processes 2` (accelerate launch, gloo on CPU) gives the numbers of one.

Each rank answers its round-robin share of the subset into `samples.rank<N>.jsonl`; after a
barrier rank 0 rebuilds result.json from every shard (`finalize`). If the barrier were a no-op,
the merge missed a shard, or a rank answered the wrong ids, the results would differ from the
one-process run. Timings (latency, `updated`) are the only fields allowed to differ.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cliffscope.cli.main import cli
from cliffscope.store import RunDir
from cliffscope.worker.launch import worker_command
from cliffscope.worker.runner import run_worker
from tests.tiny_models import profile_dirs

TIMING_KEYS = {"updated", "latency_ms", "latency_full_ms", "elapsed", "duration_s"}


@pytest.fixture()
def dirs(tmp_path: Path, tiny_llava_path: Path) -> tuple[Path, Path]:
    return profile_dirs(tmp_path, tiny_llava_path, batch_size=2)


def _run(dirs: tuple[Path, Path], command: list[str], processes: int) -> RunDir:
    profiles, runs = dirs
    args = ["--runs-dir", str(runs), "--profiles-dir", str(profiles), *command]
    result = CliRunner().invoke(cli, [*args, "--processes", str(processes)])
    assert result.exit_code == 0, result.output
    run = RunDir(runs / result.output.splitlines()[0].strip())
    log = (run.path / "worker.log").read_text(errors="replace")
    assert run.status.value == "done", log[-3000:]
    return run


def _one_process_twin(run: RunDir) -> RunDir:
    """The same run spec (subset, params, profile snapshot) run again by one in-process worker."""
    twin = RunDir(run.path.parent / f"{run.path.name}-one")
    twin.path.mkdir()
    shutil.copy(run.path / "run.toml", twin.path / "run.toml")
    twin.update_spec(status="queued")
    assert run_worker(twin.path) == 0
    assert twin.status.value == "done"
    return twin


def _numbers(value: Any) -> Any:
    """The result without timings, floats made comparable with a tolerance."""
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    if isinstance(value, float):
        return pytest.approx(value, rel=1e-4, abs=1e-6)
    return value


def _by_key(run: RunDir) -> dict[str, dict[str, Any]]:
    return {str(r["key"]): _numbers(r) for r in run.samples()}


def test_multi_process_command_is_an_accelerate_launch_with_no_prompts() -> None:
    cmd = worker_command(Path("/runs/x"), processes=3)
    assert cmd[1:3] == ["-m", "accelerate.commands.launch"]
    flags = dict(zip(cmd[3::2], cmd[4::2], strict=False))
    assert flags["--num_processes"] == "3" and flags["--num_machines"] == "1"
    assert flags["--mixed_precision"] == "no" and flags["--dynamo_backend"] == "no"
    assert int(flags["--main_process_port"]) > 0
    assert cmd[-3:] == ["-m", "cliffscope.worker", "/runs/x"]
    assert worker_command(Path("/runs/x"))[1:] == ["-m", "cliffscope.worker", "/runs/x"]


@pytest.mark.slow
def test_two_process_sweep_equals_one_process(dirs) -> None:
    command = ["sweep", "--profile", "tiny", "--task", "shapes-vqa", "--limit", "4"]
    command += ["--layers", "all"]
    two = _run(dirs, command, 2)
    one = _one_process_twin(two)
    shards = sorted(p.name for p in two.path.glob("samples*.jsonl"))
    assert shards == ["samples.rank0.jsonl", "samples.rank1.jsonl"]
    ids = [str(i) for i in two.read_spec()["subset"]["ids"]]
    rank1 = {json.loads(line)["id"] for line in (two.path / shards[1]).read_text().splitlines()}
    assert rank1 == set(ids[1::2])  # round-robin share, not a copy of the whole subset
    assert _by_key(two) == _by_key(one)
    r1, r2 = one.result(), two.result()
    assert r2["complete"] is True and r2["n_samples"] == 4
    assert _numbers(r2) == _numbers(r1)


@pytest.mark.slow
def test_two_process_analysis_equals_one_process(dirs) -> None:
    command = ["analyze", "--profile", "tiny", "--task", "shapes-vqa", "--limit", "4"]
    two = _run(dirs, command, 2)
    one = _one_process_twin(two)
    assert (two.path / "samples.rank1.jsonl").exists()
    assert _by_key(two) == _by_key(one)
    r1, r2 = one.result(), two.result()
    assert r2["complete"] is True and r2["n_samples"] == 4
    assert _numbers(r2) == _numbers(r1)
    # the maps are of the subset's first samples, whichever rank drew them
    assert sorted(p.name for p in (two.path / "maps").iterdir()) == sorted(
        p.name for p in (one.path / "maps").iterdir()
    )
    # resume after a torn shard: only the lost sample is redone, whatever the world size now
    shard = two.path / "samples.rank1.jsonl"
    lines = shard.read_text().splitlines()
    lost = json.loads(lines[-1])["id"]
    shard.write_text("\n".join(lines[:-1]) + "\n")
    two.update_spec(status="failed")
    assert run_worker(two.path) == 0
    redone = [json.loads(line) for line in (two.path / "samples.jsonl").read_text().splitlines()]
    assert [r["id"] for r in redone] == [lost]
    assert _numbers(two.result()) == _numbers(r1)


@pytest.mark.slow
def test_two_process_knockout_equals_one_process(dirs) -> None:
    command = ["knockout", "--profile", "tiny", "--task", "shapes-vqa", "--limit", "4"]
    two = _run(dirs, [*command, "--window", "2"], 2)
    one = _one_process_twin(two)
    assert (two.path / "samples.rank1.jsonl").exists()
    assert _by_key(two) == _by_key(one)
    r1, r2 = one.result(), two.result()
    assert r2["complete"] is True and r2["n_samples"] == 4
    assert _numbers(r2) == _numbers(r1)


@pytest.mark.slow
def test_two_process_prune_equals_one_process(dirs) -> None:
    command = ["prune", "--profile", "tiny", "--task", "shapes-vqa", "--limit", "4"]
    command += ["--strategies", "fastv,random,pool", "--budgets", "0.25", "--layer", "1"]
    two = _run(dirs, command, 2)
    one = _one_process_twin(two)
    assert sorted(p.name for p in two.path.glob("samples*.jsonl")) == [
        "samples.rank0.jsonl",
        "samples.rank1.jsonl",
    ]
    assert _by_key(two) == _by_key(one)  # random draws per sample, not per rank or batch
    r1, r2 = one.result(), two.result()
    assert r2["complete"] is True and r2["n_samples"] == 4 and r2["pareto"]
    assert _numbers(r2) == _numbers(r1)

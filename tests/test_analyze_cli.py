"""`cliffscope analyze` end to end on a tiny LLaVA profile, plus resuming an analysis run.

The CLI test goes through the real path: run directory from run_factory, a detached worker
process (`python -m cliffscope.worker RUN_DIR`), the progress follower, and the files a reader
sees (samples.jsonl, result.json, maps/, images/).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from cliffscope.cli.main import cli
from cliffscope.store import RunDir, RunStore
from tests.tiny_models import profile_dirs

pytestmark = pytest.mark.slow


@pytest.fixture()
def dirs(tmp_path: Path, tiny_llava_path: Path) -> tuple[Path, Path]:
    return profile_dirs(tmp_path, tiny_llava_path, batch_size=3)


def analyze(dirs: tuple[Path, Path], *args: str):
    profiles, runs = dirs
    base = ["--runs-dir", str(runs), "--profiles-dir", str(profiles), "analyze", "-p", "tiny"]
    return CliRunner().invoke(cli, [*base, "-t", "shapes-vqa", *args], catch_exceptions=False)


def test_analyze_writes_samples_result_and_maps(dirs) -> None:
    result = analyze(dirs, "--limit", "5", "--map-samples", "2", "--query", "answer")
    assert result.exit_code == 0, result.output
    run_id = result.output.splitlines()[0].strip()
    run = RunDir(dirs[1] / run_id)
    assert run.status.value == "done"
    lines = run.samples()
    assert len(lines) == 5 and all(len(r["mass"]["image"]) == 3 for r in lines)
    out = run.result()
    assert out["complete"] and out["n_samples"] == 5 and out["query"] == "answer"
    assert out["metric"] == "exact_match" and out["cliff"]["verdict"] in {
        "cliff", "no-collapse", "insufficient-data"}  # fmt: skip
    assert out["cliff"]["reason"]
    assert [m["id"] for m in out["maps"]] == run.read_spec()["subset"]["ids"][:2]
    for entry in out["maps"]:
        doc = json.loads((run.path / entry["file"]).read_text())
        grid = doc["grids"][0]
        assert set(doc["attention"]) == set(doc["cam"]) == {"0", "1", "2"}
        assert len(doc["attention"]["0"][0]) == grid["rows"] * grid["cols"] == 16
        line = next(r for r in lines if r["id"] == entry["id"])
        # attention on the grid is the image mass of the sample line (mean over heads)
        assert sum(doc["attention"]["1"][0]) == pytest.approx(line["mass"]["image"][1], abs=1e-4)
        # each layer's CAM is scaled to [0, 1]: its peak is 1, or 0 when ReLU left nothing
        for values in doc["cam"].values():
            assert min(values[0]) >= 0.0
            assert max(values[0]) == pytest.approx(1.0) or max(values[0]) == 0.0
        assert Image.open(run.path / entry["image"]).size == tuple(doc["image_size"])


def test_detach_returns_at_once_and_the_worker_finishes(dirs) -> None:
    started = time.time()
    result = analyze(dirs, "--limit", "2", "--map-samples", "0", "--detach")
    assert result.exit_code == 0, result.output
    assert time.time() - started < 5
    run = RunDir(dirs[1] / result.output.strip())
    deadline = time.time() + 120
    while not run.status.finished and time.time() < deadline:
        time.sleep(0.5)
    assert run.status.value == "done"
    assert run.result()["n_samples"] == 2 and run.result()["maps"] == []


def test_bad_profile_fails_before_any_run_is_made(dirs) -> None:
    profiles, runs = dirs
    result = CliRunner().invoke(
        cli, ["--runs-dir", str(runs), "--profiles-dir", str(profiles), "analyze", "-p", "nope",
              "-t", "shapes-vqa"],
    )  # fmt: skip
    assert result.exit_code != 0
    assert not runs.exists() or not list(runs.iterdir())


def test_resume_only_computes_missing_samples(dirs) -> None:
    from cliffscope.run_factory import new_run
    from cliffscope.worker.launch import mark_resumable
    from cliffscope.worker.runner import run_worker

    profiles, runs = dirs
    params = {"query": "last", "heads": "max", "map_samples": 1}
    run = new_run(
        RunStore(runs), "analysis", "tiny", "shapes-vqa", params, limit=4, profiles_dir=profiles
    )
    assert run_worker(run.path) == 0
    full = run.result()
    samples = run.path / "samples.jsonl"
    kept = samples.read_text().splitlines()[:2]
    samples.write_text("\n".join(kept) + "\n" + '{"key": "torn')  # crash mid-append
    mark_resumable(run)
    assert run_worker(run.path) == 0
    lines = samples.read_text().splitlines()
    assert lines[:2] == kept and len(lines) == 4
    again = run.result()
    assert again["complete"] and again["n_samples"] == 4 and again["heads"] == "max"
    np.testing.assert_allclose(
        again["flow"]["mass"]["image"]["mean"], full["flow"]["mass"]["image"]["mean"], atol=1e-5
    )


def test_cancel_between_batches_leaves_a_partial_result(dirs, monkeypatch) -> None:
    from cliffscope.run_factory import new_run
    from cliffscope.worker.analysis_job import AnalysisJob
    from cliffscope.worker.context import Cancelled, JobContext

    profiles, runs = dirs
    run = new_run(RunStore(runs), "analysis", "tiny", "shapes-vqa", {"map_samples": 0},
                  limit=5, profiles_dir=profiles)  # fmt: skip
    ctx = JobContext(run=run)
    checks: list[int] = []

    def check_cancelled() -> None:  # the user cancels while the first batch (3) runs
        checks.append(1)
        if len(checks) == 2:
            raise Cancelled()

    monkeypatch.setattr(ctx, "check_cancelled", check_cancelled)
    with pytest.raises(Cancelled):
        AnalysisJob(ctx).run()
    ctx.close()
    partial = run.result()
    assert partial["complete"] is False and partial["n_samples"] == 3 == len(run.samples())


def test_max_new_tokens_overrides_profile_and_task(dirs, tiny_llava_path) -> None:
    """--max-new-tokens 5 beats the profile's 3 (and the task's 8): recorded, and obeyed."""
    from transformers import AutoTokenizer

    result = analyze(dirs, "--limit", "3", "--map-samples", "0", "--max-new-tokens", "5")
    assert result.exit_code == 0, result.output
    run = RunDir(dirs[1] / result.output.splitlines()[0].strip())
    assert run.status.value == "done"
    assert run.read_spec()["params"]["max_new_tokens"] == 5
    tok = AutoTokenizer.from_pretrained(tiny_llava_path)
    lengths = [len(tok(r["prediction"], add_special_tokens=False).input_ids) for r in run.samples()]
    # the random tiny model never stops early: every answer is cut at exactly the cap
    assert lengths == [5, 5, 5]

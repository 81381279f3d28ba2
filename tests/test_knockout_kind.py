"""The `knockout` run kind: parameters, aggregation and its cliff, the CLI on the demo model,
resume, and the knockout cliff as a third labelled estimate in `runs show`, the report and
the comparison.

The CLI test goes the real way (run directory, detached worker, follower) on the shipped demo
model; the others call the worker in-process (`run_worker`) or use fake runs whose result.json
the real aggregator made (`tests/fake_knockout.py`).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cliffscope.aggregate.knockout import MIN_SAMPLES, aggregate, first_harmless
from cliffscope.cli.main import cli
from cliffscope.errors import ValidationError
from cliffscope.kinds.knockout import KnockoutParams
from cliffscope.kinds.registry import family, partners_of
from cliffscope.knockout_edges import DEFAULT_EDGES
from cliffscope.run_factory import new_run
from cliffscope.store import RunDir, RunStore
from cliffscope.worker.runner import run_worker
from tests.fake_knockout import knockout_lines, make_knockout_run
from tests.fake_runs import make_analysis_run, make_sweep_run

EDGES = [str(e) for e in DEFAULT_EDGES]
LABELS = ("attention flow", "truncation sweep", "attention knockout")


def _aggregate(lines, num_layers=6, **kwargs):
    return aggregate(
        lines, edges=EDGES, starts=list(range(num_layers)), window=2, num_layers=num_layers,
        metric="exact_match", **kwargs,
    )  # fmt: skip


# ---- parameters ---------------------------------------------------------------------------------


def test_params_normalise_edges_and_read_window_starts() -> None:
    p = KnockoutParams.parse({"edges": " Image->last, system->last,image->last", "layers": "1:3"})
    assert p.edges == "image->last,system->last" and p.layers == [1, 2, 3]
    assert KnockoutParams.parse({}).edge_list() == EDGES and KnockoutParams.parse({}).window == 9
    with pytest.raises(ValidationError, match="unknown source group 'pixels'"):
        KnockoutParams.parse({"edges": "pixels->last"}, naming="flag")
    with pytest.raises(ValidationError, match="--window"):
        KnockoutParams.parse({"window": -1}, naming="flag")
    with pytest.raises(ValidationError, match="--layers") as err:
        KnockoutParams.parse({"layers": "3:1"}, naming="flag")
    assert "Window starts" in (err.value.hint or "")


def test_the_kind_stands_beside_analysis_and_sweep() -> None:
    assert set(partners_of("knockout")) == {"analysis", "sweep"}
    for name in ("analysis", "sweep"):
        assert "knockout" in partners_of(name)  # declared on one side only
        assert [k.name for k in family(name)][-1] == "knockout"


# ---- aggregation and the cliff -----------------------------------------------------------------


def test_first_harmless_needs_every_later_start_within_tolerance() -> None:
    worst = np.array([[-0.9, -0.01, -0.2, 0.0], [-0.9, -0.5, 0.0, 0.0], [-0.3] * 4, [0.0] * 4])
    assert first_harmless(worst, 0.05).tolist() == [3, 2, 4, 0]


def test_aggregate_finds_the_cliff_of_the_image_edges_with_an_interval() -> None:
    ids = [f"s-{i:03d}" for i in range(30)]
    out = _aggregate(knockout_lines(ids, 6, cliff_layer=3))
    assert out["n_samples"] == 30 and out["starts"] == list(range(6)) and out["edges"] == EDGES
    cliff = out["cliff"]
    assert cliff["verdict"] == "cliff" and cliff["layer"] == 3 and cliff["lo"] == cliff["hi"] == 3
    assert cliff["edges"] == ["image->last", "image->instruction"]
    band = out["changes"]["answer"]["image->last"]
    assert band["mean"][0] == pytest.approx(-0.8, abs=0.01)
    assert all(
        lo <= m <= hi for lo, m, hi in zip(band["lo"], band["mean"], band["hi"], strict=True)
    )
    # instruction->last costs 50% at l = 0 but is not a cliff edge: the cliff ignores it
    assert out["changes"]["answer"]["instruction->last"]["mean"][0] < -0.4
    assert out["cliff_curve"][2] == pytest.approx(-0.8, abs=0.01) and out["cliff_curve"][3] > -0.05
    assert out["score"] == {"value": 1.0, "lo": 1.0, "hi": 1.0}
    # a stricter tolerance than the noise finds no harmless start
    strict = _aggregate(knockout_lines(ids, 6, cliff_layer=3), tolerance=0.0)
    assert strict["cliff"]["verdict"] in ("cliff", "never-harmless")
    assert strict["cliff"]["layer"] is None or strict["cliff"]["layer"] >= 3


def test_aggregate_does_not_depend_on_line_order_and_skips_unusable_lines() -> None:
    ids = [f"s-{i:03d}" for i in range(20)]
    lines = knockout_lines(ids, 6, cliff_layer=2)
    shuffled = lines[:]
    random.Random(1).shuffle(shuffled)
    empty = dict(lines[0], id="s-empty", key="s-empty", empty=True)
    empty["answer"] = {e: [None] * 6 for e in EDGES}
    failed = {"key": "s-bad", "id": "s-bad", "error": "could not load"}
    a, b = _aggregate(lines), _aggregate([*shuffled, empty, failed])
    for out in (a, b):
        out.pop("updated")
    assert b.pop("n_empty") == 1 and b.pop("n_failed") == 1
    a.pop("n_empty"), a.pop("n_failed")
    assert a == b


def test_too_few_samples_or_no_image_edge_give_no_cliff() -> None:
    ids = [f"s-{i:03d}" for i in range(MIN_SAMPLES - 1)]
    few = _aggregate(knockout_lines(ids, 6, cliff_layer=2))
    assert few["cliff"]["verdict"] == "insufficient-data" and few["cliff"]["layer"] is None
    lines = knockout_lines([f"s-{i:03d}" for i in range(12)], 6, cliff_layer=2)
    text_only = aggregate(lines, edges=["system->last"], starts=list(range(6)), window=2,
                          num_layers=6, metric="exact_match")  # fmt: skip
    assert text_only["cliff"]["verdict"] == "insufficient-data"
    assert "image->last" in text_only["cliff"]["reason"]


# ---- the CLI on the demo model, and resume ------------------------------------------------------


@pytest.mark.slow
def test_knockout_command_on_the_demo_writes_curves_and_the_cliff(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    args = ["--runs-dir", str(runs), "knockout", "-p", "demo", "-t", "shapes-vqa", "--limit", "12"]
    result = CliRunner().invoke(cli, [*args, "--window", "2"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    run = RunDir(runs / result.output.splitlines()[0].strip())
    assert run.status.value == "done"
    ids = run.read_spec()["subset"]["ids"]
    lines = {r["key"]: r for r in run.samples()}
    assert set(lines) == set(ids)
    out = run.result()
    assert out["complete"] and out["n_samples"] == 12 and out["kind"] == "knockout"
    assert out["num_layers"] == 4 and out["starts"] == [0, 1, 2, 3] and out["window"] == 2
    for measure in ("first", "answer"):
        assert set(out["changes"][measure]) == set(EDGES)
        for band in out["changes"][measure].values():
            assert len(band["mean"]) == 4 and all(v is not None for v in band["mean"])
    assert out["cliff"]["verdict"] in ("cliff", "never-harmless")
    assert out["flow_cliff"] is None and out["sweep_cliff"] is None  # no partner run yet
    # per sample: a relative change of a probability is >= -1; the mean is the lines' mean
    image_last = np.array([lines[i]["answer"]["image->last"] for i in ids])
    assert (image_last >= -1).all()
    assert out["changes"]["answer"]["image->last"]["mean"] == pytest.approx(
        image_last.mean(0).tolist(), rel=1e-4, abs=1e-6
    )
    # the teacher-forced answer is the one a sweep's baseline gives (the decoding policy)
    sweep = new_run(RunStore(runs), "sweep", "demo", "shapes-vqa", {"layers": [4]}, limit=12)
    assert run_worker(sweep.path) == 0
    base = {r["id"]: r["prediction"] for r in sweep.samples() if r["k"] == "base"}
    assert base == {i: lines[i]["prediction"] for i in ids}
    # a newer knockout run records the sweep's cliff
    again = new_run(RunStore(runs), "knockout", "demo", "shapes-vqa", {"window": 0}, limit=12)
    assert run_worker(again.path) == 0
    redo = again.result()
    assert redo["sweep_cliff"]["run"] == sweep.id
    # window 0 blocks nothing: every change is exactly zero, harmless from the first start
    assert {v for b in redo["changes"]["answer"].values() for v in b["mean"]} == {0.0}
    assert redo["cliff"]["layer"] == 0


@pytest.mark.slow
def test_resume_after_interruption_gives_the_same_result(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs")
    params = {"window": 2, "layers": "0:3", "engine": "naive"}
    run = new_run(store, "knockout", "demo", "shapes-vqa", params, limit=12)
    assert run_worker(run.path) == 0
    first = run.result()
    lines = (run.path / "samples.jsonl").read_text().splitlines()
    lost = [json.loads(line)["id"] for line in lines[-3:]]
    (run.path / "samples.jsonl").write_text("\n".join(lines[:-3]) + '\n{"key": "torn')
    run.update_spec(status="failed")
    assert run_worker(run.path) == 0
    again = run.samples()
    assert sorted(r["id"] for r in again) == sorted(json.loads(line)["id"] for line in lines)
    assert [r["id"] for r in again][-3:] == lost  # only the lost samples were redone
    second = run.result()
    for key in ("changes", "cliff", "cliff_curve", "score", "baseline", "n_samples"):
        assert second[key] == first[key], key


# ---- three labelled estimates: runs show, report, comparison ------------------------------------


@pytest.fixture()
def trio(tmp_path: Path) -> tuple[Path, dict[str, RunDir]]:
    runs = tmp_path / "runs"
    store = RunStore(runs)
    common = {"num_layers": 8, "profile": "demo", "task": "shapes-vqa"}
    return runs, {
        "analysis": make_analysis_run(store, cliff_layer=4, **common),
        "sweep": make_sweep_run(store, cliff_layer=2, **common),
        "knockout": make_knockout_run(store, cliff_layer=3, **common),
    }


def test_runs_show_lists_the_three_estimates_labelled(trio) -> None:
    runs, made = trio
    for kind, run in made.items():
        out = CliRunner().invoke(
            cli, ["--runs-dir", str(runs), "runs", "show", run.id], env={"COLUMNS": "200"}
        )
        assert out.exit_code == 0, out.output
        rows = {
            label: line
            for line in out.output.splitlines()
            for label in LABELS
            if f"({label}, " in line
        }
        assert set(rows) == set(LABELS), (kind, out.output)
        assert "knockout cliff  3" in rows["attention knockout"]
        assert made["knockout"].id in rows["attention knockout"]
        assert "sweep cliff     2" in rows["truncation sweep"]
    show = CliRunner().invoke(cli, ["--runs-dir", str(runs), "runs", "show", made["knockout"].id])
    assert "relative change of p(whole answer) per window start l" in show.output
    assert "3 ◀ cliff" in show.output


def test_report_and_comparison_show_the_knockout_cliff_beside_the_others(trio, tmp_path) -> None:
    from cliffscope.report import export_runs

    runs, made = trio
    out = tmp_path / "report"
    export_runs([RunDir(r.path) for r in made.values()], out, formats=("md", "json", "csv"))
    for run in made.values():
        summary = (out / run.id / "summary.md").read_text()
        for label in LABELS:
            assert f"| {label} |" in summary, (run.id, label)
        assert "| attention knockout | 3 | 0.375 |" in summary
        data = json.loads((out / run.id / "data" / "summary.json").read_text())
        assert [c["estimate"] for c in data["cliffs"]] == list(LABELS)
    knock = (out / made["knockout"].id / "summary.md").read_text()
    assert "## Attention knockout (window 3, engine shared)" in knock
    assert "figures/knockout.png" in knock and (out / made["knockout"].id / "figures").is_dir()
    csv = (out / made["knockout"].id / "data" / "knockout.csv").read_text().splitlines()
    assert csv[0] == "measure,edge,start,end,depth,mean,lo,hi"
    assert len(csv) == 1 + 2 * len(EDGES) * 8
    compare = (out / "compare.md").read_text()
    header = next(line for line in compare.splitlines() if line.startswith("| run |"))
    assert "knockout cliff (depth)" in header and "sweep cliff (depth)" in header
    for run in made.values():
        row = next(line for line in compare.splitlines() if line.startswith(f"| {run.id} |"))
        assert "3 (0.375)" in row and "2 (0.250)" in row
    assert "relative change of p(answer), worst image edge blocked" in compare


@pytest.mark.slow
def test_window_starts_beyond_the_model_fail_with_a_hint(tmp_path: Path) -> None:
    run = new_run(RunStore(tmp_path / "runs"), "knockout", "demo", "shapes-vqa",
                  {"layers": "2:9"}, limit=2)  # fmt: skip
    assert run_worker(run.path) != 0
    spec = run.read_spec()
    assert spec["status"] == "failed" and "outside 0..3" in spec["error"]
    assert "4 decoder layers" in spec.get("hint", "")

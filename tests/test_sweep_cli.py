"""`cliffscope sweep` end to end on a tiny LLaVA profile, resuming, and the --layers syntax.

The CLI test goes the real way (run directory, detached worker, follower); the other runs
call the worker in-process (`run_worker`) to stay fast. A finished analysis run of the same
profile and task must show up as the sweep's `flow_cliff`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cliffscope.cli.main import cli
from cliffscope.errors import CliffscopeError, ValidationError
from cliffscope.kinds.sweep import SweepParams
from cliffscope.run_factory import new_run
from cliffscope.store import RunDir, RunStore
from cliffscope.sweep_layers import parse_layers
from cliffscope.worker.runner import run_worker
from tests.fake_runs import make_analysis_run
from tests.tiny_models import profile_dirs


def test_layer_syntax_ranges_include_their_end() -> None:
    assert parse_layers(None) == parse_layers("all") == "all"
    assert parse_layers("0:32:8") == [0, 8, 16, 24, 32]
    assert parse_layers("2:4") == [2, 3, 4]
    assert parse_layers("8, 0,4,4") == [0, 4, 8]
    for bad in ("0:8:0", "5:1", "a,b", "1:2:3:4", "-1,2", ","):
        with pytest.raises(ValidationError):
            parse_layers(bad)


def test_a_keep_ratio_sweep_cannot_start_at_k_0() -> None:
    """The strategy says where k may start (one rule, `TokenStrategy.check_layer`); a keep
    ratio alone means FastV, as in runs made before `strategy` existed."""
    assert SweepParams.parse({"layers": "0,2"}).strategy == "all"
    fastv = SweepParams.parse({"layers": "all", "keep_ratio": 0.5})  # the worker starts at 1
    assert fastv.strategy == "fastv" and fastv.token_strategy().ratio == 0.5
    SweepParams.parse({"layers": "1:2", "strategy": "fastv", "keep_ratio": 0.5})
    with pytest.raises(CliffscopeError, match="k must be >= 1"):
        SweepParams.parse({"layers": "0,2", "keep_ratio": 0.5})


def test_a_strategy_gets_the_parameters_it_takes() -> None:
    with pytest.raises(ValidationError, match="give the keep ratio"):
        SweepParams.parse({"strategy": "fastv"})
    with pytest.raises(ValidationError, match="takes no keep ratio"):
        SweepParams.parse({"strategy": "all", "keep_ratio": 0.5})
    with pytest.raises(ValidationError, match="unknown choice 'nope'"):
        SweepParams.parse({"strategy": "nope"}, naming="flag")
    with pytest.raises(ValidationError, match="--keep-ratio"):
        SweepParams.parse({"keep_ratio": 1.5}, naming="flag")


@pytest.mark.parametrize("command", ["analyze", "sweep"])
@pytest.mark.parametrize("value", ["0", "-3", "many"])
def test_max_new_tokens_must_be_a_positive_int(tmp_path: Path, command: str, value: str) -> None:
    runs = tmp_path / "runs"
    args = ["--runs-dir", str(runs), command, "-p", "demo", "-t", "shapes-vqa"]
    result = CliRunner().invoke(cli, [*args, "--max-new-tokens", value])
    assert result.exit_code == 2, result.output
    assert "--max-new-tokens" in result.output and len(result.output.splitlines()) < 10
    assert not runs.exists() or not any(runs.iterdir())


@pytest.fixture()
def dirs(tmp_path: Path, tiny_llava_path: Path) -> tuple[Path, Path]:
    return profile_dirs(tmp_path, tiny_llava_path, batch_size=3)


@pytest.mark.slow
def test_sweep_command_writes_lines_result_and_the_flow_cliff(dirs) -> None:
    profiles, runs = dirs
    analysis = make_analysis_run(
        RunStore(runs), num_layers=3, profile="tiny", task="shapes-vqa", cliff_layer=2
    )
    args = ["--runs-dir", str(runs), "--profiles-dir", str(profiles), "sweep", "-p", "tiny"]
    args += ["-t", "shapes-vqa", "--limit", "4", "--layers", "0:3"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    run = RunDir(runs / result.output.splitlines()[0].strip())
    assert run.status.value == "done"
    ids = run.read_spec()["subset"]["ids"]
    assert {r["key"] for r in run.samples()} == {
        f"{i}@{k}" for i in ids for k in ["base", 0, 1, 2, 3]
    }
    out = run.result()
    assert out["complete"] and out["n_samples"] == 4 and out["layers"] == [0, 1, 2, 3]
    assert out["num_layers"] == 3 and out["metric"] == "exact_match"
    points = {p["k"]: p for p in out["points"]}
    assert points[3]["delta"] == 0 and points[3]["flops_saved"] == 0 and points[3]["kv_saved"] == 0
    assert points[0]["flops_saved"] > points[1]["flops_saved"] > points[2]["flops_saved"] > 0
    assert all(p["latency_ms"] > 0 for p in points.values()) and out["latency_full_ms"] > 0
    assert out["cliff"]["verdict"] == "insufficient-data"
    flow = out["flow_cliff"]
    assert flow["run"] == analysis.id and flow["layer"] == analysis.result()["cliff"]["layer"]
    base = {r["id"]: r for r in run.samples() if r["k"] == "base"}
    k3 = {r["id"]: r["prediction"] for r in run.samples() if r["k"] == 3}
    assert all(k3[i] == base[i]["prediction"] for i in ids)  # k = L is the untouched model
    assert all(base[i]["n_image"] == 16 for i in ids)


@pytest.mark.slow
def test_resume_redoes_only_unfinished_samples(dirs) -> None:
    profiles, runs = dirs
    params = {"layers": [0, 2], "mode": "mask", "keep_ratio": None, "engine": "naive"}
    run = new_run(RunStore(runs), "sweep", "tiny", "shapes-vqa", params, limit=5,
                  profiles_dir=profiles)  # fmt: skip
    assert run_worker(run.path) == 0
    first = {r["key"]: r["prediction"] for r in run.samples()}
    assert len(first) == 5 * 3
    # tear the run: the last sample keeps only its baseline line, and a torn line follows
    path = run.path / "samples.jsonl"
    lines = path.read_text().splitlines()
    last_id = json.loads(lines[-1])["id"]
    kept = [ln for ln in lines if json.loads(ln)["id"] != last_id or '"k": "base"' in ln]
    path.write_text("\n".join(kept) + '\n{"key": "torn')
    run.update_spec(status="failed")
    assert run_worker(run.path) == 0
    again = run.samples()
    assert {r["key"]: r["prediction"] for r in again} == first
    assert sum(1 for r in again if r["id"] == last_id) == 3
    out = run.result()
    assert out["complete"] and out["n_samples"] == 5 and out["mode"] == "mask"
    assert all(p["flops_saved"] == 0 for p in out["points"])  # mask mode removes nothing


@pytest.mark.slow
def test_caption_sweep_with_keep_ratio_scores_cider_per_layer(dirs) -> None:
    profiles, runs = dirs
    params = {"layers": "all", "keep_ratio": 0.5}
    run = new_run(RunStore(runs), "sweep", "tiny", "shapes-caption", params, limit=3,
                  profiles_dir=profiles)  # fmt: skip
    assert run_worker(run.path) == 0
    out = run.result()
    assert out["metric"] == "cider" and out["layers"] == [1, 2, 3] and out["keep_ratio"] == 0.5
    assert out["points"][0]["flips_to_wrong"] is None
    assert all("references" in r and "score" not in r for r in run.samples())
    assert out["points"][0]["kv_saved"] == pytest.approx(
        8 / (16 + run.samples()[0]["n_text"]) * 2 / 3
    )


@pytest.mark.slow
def test_sweep_max_new_tokens_caps_every_answer(dirs, tiny_llava_path) -> None:
    """--max-new-tokens 4 beats the profile's 3: in run.toml, the result, and every answer."""
    from transformers import AutoTokenizer

    profiles, runs = dirs
    args = ["--runs-dir", str(runs), "--profiles-dir", str(profiles), "sweep", "-p", "tiny"]
    args += ["-t", "shapes-vqa", "--limit", "2", "--layers", "0,3", "--max-new-tokens", "4"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    run = RunDir(runs / result.output.splitlines()[0].strip())
    assert run.status.value == "done"
    assert run.read_spec()["params"]["max_new_tokens"] == 4
    assert run.result()["max_new_tokens"] == 4
    tok = AutoTokenizer.from_pretrained(tiny_llava_path)
    lengths = {len(tok(r["prediction"], add_special_tokens=False).input_ids) for r in run.samples()}
    assert max(lengths) == 4 and len(run.samples()) == 2 * 3  # base, k = 0, k = 3


@pytest.mark.slow
def test_half_precision_sweep_verifies_its_engine_on_a_subset(tmp_path, tiny_llava_path) -> None:
    """bf16 turns --verify on by default: naive re-runs of a seeded subset, one line per sample,
    and result.json's verification block traced to those lines; float32 leaves it off."""
    profiles, runs = tmp_path / "profiles", tmp_path / "runs"
    profiles.mkdir()
    for name, dtype in (("half", "bfloat16"), ("full", "float32")):
        (profiles / f"{name}.toml").write_text(
            f'family = "llava"\nmodel = "{tiny_llava_path}"\ndtype = "{dtype}"\n'
            "batch_size = 4\nmax_new_tokens = 4\n"
        )
    store = RunStore(runs)
    params = {"layers": [0, 1, 3]}
    half = new_run(store, "sweep", "half", "shapes-vqa", params, limit=12, profiles_dir=profiles)
    assert run_worker(half.path) == 0
    checks = [r for r in half.samples() if "verify" in r]
    assert len(checks) == 8 and all(r["key"] == f"{r['id']}@verify" for r in checks)
    block = half.result()["verification"]
    assert block["n_samples"] == 8 and block["dtype"] == "bfloat16"
    # k = 0, 1 and the baseline (k = 3 = L is the baseline itself)
    assert block["answers"] == 8 * 3 == sum(r["verify"]["total"] for r in checks)
    assert block["agreeing"] == sum(r["verify"]["agree"] for r in checks)
    assert half.result()["n_samples"] == 12  # the check lines are not samples
    assert any("re-run with the naive engine" in e.get("message", "") for e in half.events())
    # resume: the finished checks are kept, nothing is redone
    before = half.samples()
    half.update_spec(status="failed")
    assert run_worker(half.path) == 0
    assert half.samples() == before
    # runs show, the report and the run view's note state the agreement
    show = CliRunner().invoke(cli, ["--runs-dir", str(runs), "runs", "show", half.id])
    assert (
        "engine check (bfloat16)" in show.output and f"/{block['answers']} answers" in show.output
    )
    from cliffscope.report.export import export_runs

    out_dir = tmp_path / "report"
    export_runs([half], out_dir)
    assert "Engine check (bfloat16)" in (out_dir / "summary.md").read_text()
    # runs show --sample: every line of one sample with its answer token ids
    one = checks[0]["id"]
    shown = CliRunner().invoke(
        cli, ["--runs-dir", str(runs), "runs", "show", half.id, "--sample", one]
    )
    ids = next(r["answer_ids"] for r in half.samples() if r["key"] == f"{one}@base")
    assert f"{one}@base" in shown.output and " ".join(map(str, ids)) in shown.output
    full = new_run(store, "sweep", "full", "shapes-vqa", params, limit=4, profiles_dir=profiles)
    assert run_worker(full.path) == 0
    assert full.result()["verification"] is None
    assert not any("verify" in r for r in full.samples())

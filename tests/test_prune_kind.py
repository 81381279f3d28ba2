"""The `prune` kind end to end on the embedded demo model (builtin:demo, shapes-vqa).

The CLI test goes the real way (run directory, detached worker, follower); the others call the
worker in-process (`run_worker`). What is checked: the table and the Pareto front in
result.json traced to the sample lines; a torn run resumes to the same result; the shared
engine equals one run per branch (answers identical, the logit that chose each first token
within 1e-5); the random strategy draws per sample (the same lines at batch sizes 1 and 4 and
after a resume, different ones under another seed).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cliffscope.aggregate.prune import pareto_front
from cliffscope.cli.main import cli
from cliffscope.errors import ValidationError
from cliffscope.kinds.prune import PruneParams
from cliffscope.run_factory import new_run
from cliffscope.store import RunDir, RunStore
from cliffscope.worker.runner import run_worker

pytestmark = pytest.mark.slow

# the done-when command's branches, plus a budget pool refuses (0.3 is not 1/n: skipped, listed)
ARGS = ["--strategies", "fastv,random,cls,pool", "--budgets", "0.5,0.25,0.3", "--layer", "2"]
BRANCHES = [f"{s}@{b}" for s in ("fastv", "random", "cls") for b in ("0.5", "0.25", "0.3")]
BRANCHES += ["pool@0.5", "pool@0.25"]
VOLATILE = ("updated", "latency_ms", "latency_batch_size")  # measured, not from the samples


@pytest.fixture()
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    """Demo profiles at batch sizes 1 and 4, and a runs dir."""
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    for size in (1, 4):
        (profiles / f"demo{size}.toml").write_text(
            f'family = "llava"\nmodel = "builtin:demo"\nbatch_size = {size}\nmax_new_tokens = 4\n'
        )
    return profiles, tmp_path / "runs"


def _run(dirs, params: dict, limit: int = 6, profile: str = "demo4") -> RunDir:
    profiles, runs = dirs
    run = new_run(RunStore(runs), "prune", profile, "shapes-vqa", params, limit=limit,
                  profiles_dir=profiles)  # fmt: skip
    assert run_worker(run.path) == 0, run.events()[-3:]
    return run


def _stable(value):
    """result.json without what is measured rather than derived from the lines."""
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def test_params_parse_and_refuse_clearly() -> None:
    p = PruneParams.parse({"strategies": "fastv, pool,fastv", "budgets": "0.5,0.3"})
    assert p.strategies == ["fastv", "pool"] and p.budgets == [0.5, 0.3]
    planned, refused = p.plan()
    assert [b.name for b in planned] == ["fastv@0.5", "fastv@0.3", "pool@0.5"]
    assert refused == [{"branch": "pool@0.3", "reason": refused[0]["reason"]}]
    assert "1/n" in refused[0]["reason"]
    with pytest.raises(ValidationError, match="unknown token strategy nope"):
        PruneParams.parse({"strategies": "fastv,nope"})
    with pytest.raises(ValidationError, match="pyramid is not among"):
        PruneParams.parse({"strategies": "fastv", "schedule": "1:0.5"})
    with pytest.raises(ValidationError, match="no \\(strategy, budget\\) pair"):
        PruneParams.parse({"strategies": "fastv", "budgets": "0.5", "layer": 0})
    with pytest.raises(ValidationError, match="budgets must lie"):
        PruneParams.parse({"budgets": "0.5,2"})
    pyramid = PruneParams.parse(
        {"strategies": "pyramid", "budgets": "0.25", "schedule": "1:0.5,3:0.25"}
    )
    assert [(b.name, b.k) for b in pyramid.plan()[0]] == [("pyramid@0.25", 1)]


def test_pareto_front_keeps_the_points_nothing_beats() -> None:
    points = [
        {"name": "base", "score": 0.9, "flops_saved": 0.0},
        {"name": "a", "score": 0.9, "flops_saved": 0.3},  # beats base: as good, cheaper
        {"name": "b", "score": 0.8, "flops_saved": 0.3},  # beaten by a
        {"name": "c", "score": 0.6, "flops_saved": 0.7},
        {"name": "d", "score": 0.5, "flops_saved": 0.6},  # beaten by c
        {"name": "e", "score": None, "flops_saved": 0.9},  # no score yet: not a point
    ]
    assert pareto_front(points) == ["a", "c"]
    # lower is better: d beats b, a and the baseline; c saves more FLOPs than d
    assert pareto_front(points, higher_is_better=False) == ["d", "c"]


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory) -> RunDir:
    """One prune run made the real way: `cliffscope prune` (run dir, worker, follower)."""
    tmp = tmp_path_factory.mktemp("prune")
    profiles, runs = tmp / "profiles", tmp / "runs"
    profiles.mkdir()
    (profiles / "demo4.toml").write_text(
        'family = "llava"\nmodel = "builtin:demo"\nbatch_size = 4\nmax_new_tokens = 4\n'
    )
    args = ["--runs-dir", str(runs), "--profiles-dir", str(profiles), "prune", "-p", "demo4"]
    result = CliRunner().invoke(cli, [*args, "-t", "shapes-vqa", "--limit", "6", *ARGS])
    assert result.exit_code == 0, result.output
    return RunDir(runs / result.output.splitlines()[0].strip())


def test_prune_command_writes_the_table_and_the_front(cli_run) -> None:
    run = cli_run
    assert run.status.value == "done"
    ids = run.read_spec()["subset"]["ids"]
    lines = {r["key"]: r for r in run.samples()}
    assert set(lines) == {f"{i}@{b}" for i in ids for b in ["base", *BRANCHES]}
    out = run.result()
    assert out["complete"] and out["n_samples"] == 6 and out["kind"] == "prune"
    assert [b["name"] for b in out["branches"]] == BRANCHES
    assert [r["branch"] for r in out["refused"]] == ["pool@0.3"]
    by_name = {b["name"]: b for b in out["branches"]}
    for name, branch in by_name.items():  # every number traces to the lines
        mine = [lines[f"{i}@{name}"] for i in ids]
        base = [lines[f"{i}@base"] for i in ids]
        assert branch["score"] == pytest.approx(sum(m["score"] for m in mine) / 6)
        assert branch["delta"] == pytest.approx(branch["score"] - out["baseline"]["score"])
        assert branch["lo"] <= branch["delta"] <= branch["hi"]
        assert branch["flops_saved"] == pytest.approx(sum(m["flops_saved"] for m in mine) / 6)
        assert branch["flips_to_wrong"] == sum(
            b["score"] >= 0.5 > m["score"] for b, m in zip(base, mine, strict=True)
        )
        assert branch["latency_ms"] > 0 and all(m["answer_ids"] for m in mine)
    assert by_name["fastv@0.25"]["flops_saved"] > by_name["fastv@0.5"]["flops_saved"] > 0
    assert all(lines[f"{i}@fastv@0.25"]["kept"] == [4] for i in ids)  # 25% of 16 image tokens
    assert all(lines[f"{i}@pool@0.25"]["kept"] == [4] for i in ids)  # one token per 2x2 block
    assert all(lines[f"{i}@pool@0.5"]["kept"] == [8] for i in ids)  # one per horizontal pair
    points = [out["baseline"], *out["branches"]]
    assert out["pareto"] == pareto_front(points) and out["pareto"]
    assert all(p["pareto"] == (p["name"] in out["pareto"]) for p in points)


def test_a_torn_run_resumes_to_the_same_result(dirs) -> None:
    params = {"strategies": "fastv,random,pool", "budgets": "0.25", "layer": 1}
    run = _run(dirs, params, limit=7)
    first, result = {r["key"]: r for r in run.samples()}, run.result()
    path = run.path / "samples.jsonl"
    text = path.read_text().splitlines()
    last = json.loads(text[-1])["id"]  # the last sample keeps only its baseline line
    kept = [ln for ln in text if json.loads(ln)["id"] != last or '"branch": "base"' in ln]
    path.write_text("\n".join(kept) + '\n{"key": "torn')
    run.update_spec(status="failed")
    assert run_worker(run.path) == 0
    again = {r["key"]: r for r in run.samples()}
    assert set(again) == set(first)
    for key, line in again.items():  # the redone sample ran in a batch of its own
        assert abs(line.pop("first_logit") - first[key].pop("first_logit")) <= 1e-5
        assert line == first[key]
    assert _stable(run.result()) == _stable(result)


def test_shared_equals_naive_and_random_draws_per_sample(dirs) -> None:
    params = {"strategies": "fastv,random,cls,pool,all", "budgets": "0.5,0.25", "layer": 2}
    shared = {r["key"]: r for r in _run(dirs, params).samples()}
    naive = {r["key"]: r for r in _run(dirs, {**params, "engine": "naive"}).samples()}
    assert set(shared) == set(naive)
    for key, line in shared.items():
        assert line["answer_ids"] == naive[key]["answer_ids"], key
        assert abs(line["first_logit"] - naive[key]["first_logit"]) <= 1e-5, key
    # random: the same per sample at batch size 1 and 4, another draw under another seed
    alone = {r["key"]: r for r in _run(dirs, params, profile="demo1").samples()}
    other = {r["key"]: r for r in _run(dirs, {**params, "random_seed": 7}).samples()}
    randoms = [k for k in shared if "@random@" in k]
    assert all(abs(shared[k]["first_logit"] - alone[k]["first_logit"]) <= 1e-4 for k in randoms)
    assert max(abs(shared[k]["first_logit"] - other[k]["first_logit"]) for k in randoms) > 1e-3
    fastv = [k for k in shared if "@fastv@" in k]
    assert all(abs(shared[k]["first_logit"] - other[k]["first_logit"]) <= 1e-4 for k in fastv)


def test_runs_show_and_the_report_have_the_table_and_the_plot(cli_run, tmp_path) -> None:
    from cliffscope.report import export_runs

    runs = cli_run.path.parent
    shown = CliRunner().invoke(cli, ["--runs-dir", str(runs), "runs", "show", cli_run.id])
    assert shown.exit_code == 0, shown.output
    out = cli_run.result()
    assert "per branch at layer 2" in shown.output and "pool@0.3 skipped" in shown.output
    for name in BRANCHES:
        assert (name + " ◆" if name in out["pareto"] else name) in shown.output
    export_runs([cli_run], tmp_path / "report", formats=("md", "json", "csv"))
    folder = tmp_path / "report"
    summary = (folder / "summary.md").read_text()
    assert "## Token pruning (layer K = 2" in summary and "## Cliff" not in summary
    assert "![score against FLOPs saved](figures/prune.png)" in summary
    assert (folder / "figures" / "prune.png").read_bytes()[:4] == b"\x89PNG"
    assert "FLOPs saved (%)" in summary and "Pareto front: " in summary  # the text plot
    for branch in out["branches"]:
        mark = " ◆ |" if branch["pareto"] else "   |"
        assert f"| {branch['name']} | {branch['score']:.3f} |" in summary
        assert summary.split(f"| {branch['name']} |")[1].splitlines()[0].endswith(mark)
    data = json.loads((folder / "data" / "summary.json").read_text())
    assert [b["name"] for b in data["prune"]["branches"]] == BRANCHES
    assert (folder / "data" / "prune.csv").read_text().splitlines()[0].startswith("name,strategy")


async def test_the_run_view_shows_the_prune_tab(cli_run) -> None:
    from cliffscope.tui.screens.run_view import RunViewScreen
    from cliffscope.tui.widgets.prune_pane import ParetoPlot
    from tests.test_tui_support import make_app, shows, wait_for

    app = make_app(cli_run.path.parent)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.loaded)
        app.open_run(cli_run.id)
        await wait_for(pilot, lambda: isinstance(app.screen, RunViewScreen))
        assert app.screen.tabs == ("prune", "samples", "log")
        await wait_for(pilot, shows(pilot, "fastv@0.25"))
        await wait_for(pilot, shows(pilot, "pool@0.3 skipped"))
        plot = app.screen.query_one(ParetoPlot)
        out = cli_run.result()
        xs, ys = plot.series["fastv"]
        assert xs == [100 * b["flops_saved"] for b in out["branches"][:3]]
        assert plot.markers["baseline"] == out["baseline"]["score"]
        await pilot.press("2")
        await wait_for(pilot, shows(pilot, "flipped under"))


async def test_the_launch_form_offers_the_prune_kind(tmp_path) -> None:
    from cliffscope.tui.screens.launch import LaunchScreen
    from tests.test_tui_support import make_app, wait_for

    app = make_app(tmp_path / "runs")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.loaded)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, LaunchScreen))
        form = app.screen
        assert "prune" in [value for _, value in form.query_one("#kind")._options]
        form.query_one("#kind").value = "prune"
        await pilot.pause()
        for field in ("strategies", "budgets", "layer", "schedule", "random-seed", "engine"):
            assert form.query_one(f"#prune-{field}").parent.display, field
        assert not form.query_one("#sweep-layers").parent.display

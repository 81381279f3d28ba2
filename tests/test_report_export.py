"""`export_runs` end to end on fake runs: golden Markdown, numbers, figures, links, CLI.

Regenerate the golden files after an intended change with
`CLIFFSCOPE_UPDATE_GOLDEN=1 pytest tests/test_report_export.py`, and review the diff.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from cliffscope.report import export_runs
from cliffscope.store import RunStore
from tests.fake_runs import HOSTILE_PREDICTION, make_analysis_run, make_sweep_run
from tests.test_report_markdown import split_row

GOLDEN = Path(__file__).parent / "golden"
UPDATE = bool(os.environ.get("CLIFFSCOPE_UPDATE_GOLDEN"))


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory):
    store = RunStore(tmp_path_factory.mktemp("store"))
    analysis = make_analysis_run(store)
    sweep = make_sweep_run(store)
    out = tmp_path_factory.mktemp("report")
    result = export_runs([analysis, sweep], out, formats=("md", "json", "csv"))
    return store, analysis, sweep, result


def table(text: str, first_header: str) -> tuple[list[str], list[list[str]]]:
    """The Markdown table whose header row starts with `first_header`, parsed like GFM."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(split_row(line))
    return split_row(lines[start]), rows


def parse_interval(cell: str) -> tuple[float, float, float]:
    mean, lo, hi = re.fullmatch(r"(\S+) \[(\S+), (\S+)\]", cell).groups()
    return float(mean), float(lo), float(hi)


@pytest.mark.parametrize(
    ("name", "golden"),
    [
        ("20260102-030405-analysis-demo-llava-shapes-vqa-0000/summary.md", "summary_analysis.md"),
        ("20260102-031405-sweep-demo-llava-shapes-vqa-0000/summary.md", "summary_sweep.md"),
        ("compare.md", "compare.md"),
    ],
)
def test_markdown_matches_golden(exported, name: str, golden: str) -> None:
    text = (exported[3].out_dir / name).read_text(encoding="utf-8")
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        (GOLDEN / golden).write_text(text, encoding="utf-8")
    assert text == (GOLDEN / golden).read_text(encoding="utf-8"), (
        f"{name} differs from tests/golden/{golden}; if intended, rerun with "
        "CLIFFSCOPE_UPDATE_GOLDEN=1"
    )


def test_flow_table_equals_result_json(exported) -> None:
    _, analysis, _, result = exported
    res = analysis.result()
    text = (result.out_dir / analysis.id / "summary.md").read_text()
    headers, rows = table(text, "layer")
    groups = headers[2:-1]
    assert groups == res["groups"]
    assert len(rows) == res["num_layers"]
    for layer, row in enumerate(rows):
        assert int(row[0]) == layer
        for group, cell in zip(groups, row[2:-1], strict=True):
            stats = res["flow"]["mass"][group]
            for got, key in zip(parse_interval(cell), ("mean", "lo", "hi"), strict=True):
                assert got == pytest.approx(stats[key][layer], abs=0.5e-4 + 1e-12)
    marked = [int(r[0]) for r in rows if "flow cliff" in r[-1]]
    assert marked == [res["cliff"]["layer"]]


def test_sweep_table_equals_result_json(exported) -> None:
    _, _, sweep, result = exported
    res = sweep.result()
    text = (result.out_dir / sweep.id / "summary.md").read_text()
    _, rows = table(text, "k")
    assert [int(r[0]) for r in rows] == [p["k"] for p in res["points"]]
    for row, p in zip(rows, res["points"], strict=True):
        assert float(row[2]) == pytest.approx(p["score"], abs=5e-4)
        assert float(row[3]) == pytest.approx(p["delta"], abs=5e-4)
        lo, hi = re.fullmatch(r"\[(\S+), (\S+)\]", row[4]).groups()
        assert (float(lo), float(hi)) == pytest.approx((p["lo"], p["hi"]), abs=5e-4)
        assert (int(row[5]), int(row[6])) == (p["flips_to_wrong"], p["flips_to_right"])
        assert int(row[7]) == p["changed"]
        assert float(row[8].rstrip("%")) / 100 == pytest.approx(p["flops_saved"], abs=5e-4)
        assert float(row[9].rstrip("%")) / 100 == pytest.approx(p["kv_saved"], abs=5e-4)
        assert float(row[10]) == pytest.approx(p["latency_ms"], abs=0.05)
    base = re.search(r"Baseline \(no truncation\): (\S+ \[\S+, \S+\]);", text).group(1)
    assert parse_interval(base) == pytest.approx(
        (res["baseline"]["score"], res["baseline"]["lo"], res["baseline"]["hi"]), abs=5e-4
    )


def test_compare_table_shows_both_cliffs_and_scores(exported) -> None:
    _, analysis, sweep, result = exported
    text = result.markdown.read_text()
    assert result.markdown.name == "compare.md"
    headers, rows = table(text, "run")
    by_run = {r[0].replace("\\", ""): dict(zip(headers, r, strict=True)) for r in rows}
    flow_cliff, sweep_cliff = analysis.result()["cliff"]["layer"], sweep.result()["cliff"]["layer"]
    for run in (analysis, sweep):  # each run shows its own cliff and its partner's
        row = by_run[run.id]
        assert row["flow cliff (depth)"] == f"{flow_cliff} ({flow_cliff / 8:.3f})"
        assert row["sweep cliff (depth)"] == f"{sweep_cliff} ({sweep_cliff / 8:.3f})"
    score = analysis.result()["score"]
    got = parse_interval(by_run[analysis.id]["score [95% interval]"])
    assert got == pytest.approx((score["value"], score["lo"], score["hi"]), abs=5e-4)


def test_json_and_csv_carry_full_precision(exported) -> None:
    import csv

    _, analysis, sweep, result = exported
    res = analysis.result()
    data = json.loads((result.out_dir / analysis.id / "data" / "summary.json").read_text())
    mass = [r for r in data["flow"]["mass"] if r["group"] == "image"]
    assert [r["mean"] for r in mass] == res["flow"]["mass"]["image"]["mean"]
    with open(result.out_dir / analysis.id / "data" / "flow.csv") as fh:
        flow = list(csv.DictReader(fh))
    density = [r for r in flow if r["measure"] == "density" and r["group"] == "system"]
    assert [float(r["mean"]) for r in density] == res["flow"]["density"]["system"]["mean"]
    with open(result.out_dir / sweep.id / "data" / "sweep.csv") as fh:
        points = list(csv.DictReader(fh))
    assert [float(r["score"]) for r in points] == [p["score"] for p in sweep.result()["points"]]
    compare = json.loads((result.out_dir / "data" / "compare.json").read_text())
    assert {r["run"]: r["sweep_cliff"] for r in compare["runs"]} == {
        analysis.id: sweep.result()["cliff"]["layer"],
        sweep.id: sweep.result()["cliff"]["layer"],
    }


def test_pngs_are_images_of_the_expected_size(exported) -> None:
    from PIL import Image

    from cliffscope.report import compare, figures

    _, analysis, sweep, result = exported
    expected = {
        f"{analysis.id}/figures/flow.png": figures.pixel_size(figures.FLOW_SIZE),
        f"{analysis.id}/figures/maps-s-000000.png": figures.pixel_size(figures.maps_size(6)),
        f"{analysis.id}/figures/maps-s-000001.png": figures.pixel_size(figures.maps_size(6)),
        f"{sweep.id}/figures/sweep.png": figures.pixel_size(figures.SWEEP_SIZE),
        "figures/compare-depth.png": figures.pixel_size(compare.COMPARE_SIZE),
    }
    bands = ("0-1", "2-3", "4-5", "6-7")  # the 8 layers' maps in four bands, per map sample
    overlays = {
        f"{analysis.id}/figures/overlay-{sid}-{band}.png": None
        for sid in ("s-000000", "s-000001")
        for band in bands
    }
    pngs = {str(p.relative_to(result.out_dir)) for p in result.files if p.suffix == ".png"}
    assert pngs == set(expected) | set(overlays)
    for rel, size in {**expected, **overlays}.items():
        with Image.open(result.out_dir / rel) as img:
            assert img.format == "PNG" and (size is None or img.size == size), rel
            assert len(img.convert("L").getcolors(maxcolors=1 << 16) or []) > 10, "blank figure"


def test_links_are_relative_and_resolve(exported) -> None:
    result = exported[3]
    for md in [p for p in result.files if p.suffix == ".md"]:
        targets = re.findall(r"(?<!\\)\]\(([^)]+)\)", md.read_text())  # not escaped text
        assert targets
        for target in targets:
            assert not target.startswith(("/", "http:", "https:", "file:")), target
            assert (md.parent / target).resolve().is_file(), f"{md.name} -> {target}"


def test_dataset_text_is_escaped(exported) -> None:
    _, analysis, _, result = exported
    text = (result.out_dir / analysis.id / "summary.md").read_text()
    assert "<b>" not in text and "<i>" not in text
    headers, rows = table(text, "id")
    assert all(len(r) == len(headers) for r in rows)
    hostile = dict(zip(headers, next(r for r in rows if r[0] == "s-000001"), strict=True))
    assert "\\`rm -rf\\`" in hostile["prediction"] and "&lt;b&gt;" in hostile["prediction"]
    assert hostile["question"] == "Is it \\*red\\* \\| \\`blue\\`?"
    assert hostile["references"] == "a\\|b / &lt;i&gt;c&lt;/i&gt;"
    assert HOSTILE_PREDICTION.splitlines()[1].startswith("[link]")  # the fake really is hostile


def test_single_run_defaults_to_its_run_dir_and_finds_its_partner(exported) -> None:
    _, analysis, sweep, _ = exported
    result = export_runs([analysis])  # the store also holds the sweep of the same model/task
    assert result.out_dir == analysis.path
    assert result.markdown == analysis.path / "summary.md"
    assert (analysis.path / "figures" / "flow.png").is_file()
    _, rows = table(result.markdown.read_text(), "estimate")
    assert [r[0] for r in rows] == ["attention flow", "truncation sweep"]
    assert rows[1][1] == str(sweep.result()["cliff"]["layer"])
    alone = export_runs([analysis], analysis.path / "alone", search_store=False)
    _, rows = table(alone.markdown.read_text(), "estimate")
    assert rows[1][1] == "—" and "no run in this report" in rows[1][4]


def test_unfinished_runs_still_render(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs")
    partial = make_analysis_run(store, n_done=5, n_maps=0, status="running")
    sweep = make_sweep_run(store, ks=[0, 1, 2], status="running")
    queued = store.create(
        kind="sweep",
        profile={"name": "p", "model": "m"},
        task={"name": "t"},
        params={},
        subset={"seed": 0, "ids": ["a"], "hash": "sha256:0"},
    )
    early = make_analysis_run(store, seed=3, n_maps=0, status="running")
    early.write_result({"kind": "analysis", "num_layers": 8, "n_samples": 0, "complete": False})
    runs = [partial, sweep, queued, early]
    result = export_runs(runs, tmp_path / "out", formats=("md", "json", "csv"))
    assert "No flow measured yet." in (tmp_path / "out" / early.id / "summary.md").read_text()
    assert not (tmp_path / "out" / early.id / "figures").exists()
    text = (tmp_path / "out" / partial.id / "summary.md").read_text()
    assert "interrupted (partial result)" in text and "| samples | 5 of 20 |" in text
    _, rows = table((tmp_path / "out" / sweep.id / "summary.md").read_text(), "k")
    assert [r[0] for r in rows] == ["0", "1", "2"]
    queued_text = (tmp_path / "out" / queued.id / "summary.md").read_text()
    assert "No result yet" in queued_text
    assert result.markdown is not None and not result.warnings


def test_broken_or_escaping_map_costs_only_that_figure(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs")
    run = make_analysis_run(store, n_samples=6)
    res = run.result()
    (run.path / res["maps"][0]["file"]).write_text("{not json")
    res["maps"][1]["file"] = "../../../etc/passwd"
    run.write_result(res)
    result = export_runs([run], tmp_path / "out", layers_for_maps=[1, 2])
    assert len(result.warnings) == 2
    assert (tmp_path / "out" / "figures" / "flow.png").is_file()
    assert not list((tmp_path / "out" / "figures").glob("maps-*"))
    assert not list((tmp_path / "out" / "figures").glob("overlay-*"))


def test_layers_for_maps_choose_the_columns(tmp_path: Path) -> None:
    from PIL import Image

    from cliffscope.report import figures

    run = make_analysis_run(RunStore(tmp_path / "runs"), n_samples=4, n_maps=1)
    result = export_runs([run], tmp_path / "out", layers_for_maps=[1, 5, 99])
    with Image.open(tmp_path / "out" / "figures" / "maps-s-000000.png") as img:
        assert img.size == figures.pixel_size(figures.maps_size(2))  # 99 does not exist
    overlays = sorted(p.name for p in (tmp_path / "out" / "figures").glob("overlay-*"))
    assert overlays == ["overlay-s-000000-1-1.png", "overlay-s-000000-5-5.png"]  # one per layer
    assert "![sample s-000000, layer 5](figures/overlay-s-000000-5-5.png)" in (
        result.markdown.read_text()
    )
    assert result.warnings == []


def test_choose_layers_keeps_the_cliff() -> None:
    from cliffscope.report.figures import choose_layers

    assert choose_layers(range(32), None, cliff=13) == [0, 6, 13, 19, 25, 31]
    assert choose_layers(range(4), None) == [0, 1, 2, 3]
    assert choose_layers(range(8), [7, 3, 9]) == [7, 3]


def test_cli_export(exported, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from cliffscope.cli.main import cli

    store, analysis, sweep, _ = exported
    out = tmp_path / "cli"
    args = ["--runs-dir", str(store.root), "export", analysis.id, sweep.id[:15], "-o", str(out)]
    run = CliRunner().invoke(cli, [*args, "--format", "all"])
    assert run.exit_code == 0, run.output
    assert run.output.strip().splitlines()[-1] == str(out / "compare.md")
    assert (out / "data" / "compare.csv").is_file()
    bad = CliRunner().invoke(cli, ["--runs-dir", str(store.root), "export", "nope"])
    assert bad.exit_code != 0


def test_report_import_is_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys, cliffscope.report.export, cliffscope.cli.export_cmd;"
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'matplotlib', 'plotext', 'torch', 'transformers', 'textual'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_sweep_shows_the_flow_cliff_its_worker_recorded(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs")
    recorded = {"run": "20250101-000000-analysis-x-y-abcd", "n_samples": 9, "layer": 5}
    recorded |= {"lo": 4, "hi": 6, "verdict": "cliff", "reason": "recorded"}
    sweep = make_sweep_run(store, flow_cliff=recorded)
    make_analysis_run(store, cliff_layer=2)  # same model and task, but not the recorded run
    _, rows = table(export_runs([sweep]).markdown.read_text(), "estimate")
    assert rows[0][:4] == ["attention flow", "5", "0.625", "4–6"]
    assert rows[0][-1] == "20250101-000000-analysis-x-y-abcd"
    other = make_analysis_run(store, cliff_layer=1, run_id="20260103-000000-analysis-z-0001")
    both = export_runs([sweep, other], tmp_path / "both")  # a partner in the report wins
    text = (both.out_dir / sweep.id / "summary.md").read_text()
    assert table(text, "estimate")[1][0][1] == "1"

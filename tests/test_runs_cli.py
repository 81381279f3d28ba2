"""`cliffscope runs show`: the per-layer numbers a user reads in the terminal match result.json."""

from __future__ import annotations

import re

from click.testing import CliRunner

from cliffscope.cli.main import cli
from cliffscope.store import RunStore
from tests.fake_runs import make_analysis_run, make_sweep_run


def _show(root, run_id: str) -> str:
    out = CliRunner().invoke(cli, ["--runs-dir", str(root), "runs", "show", run_id])
    assert out.exit_code == 0, out.output
    return out.output


def _rows(text: str, first: str) -> dict[str, list[str]]:
    """Table rows after the line that starts with header ``first``, keyed by their first cell."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:1] == [first])
    rows = {}
    for line in lines[start + 1 :]:
        cells = re.sub(r"◀ cliff", "", line).split()
        if cells:
            rows[cells[0]] = cells[1:]
    return rows


def test_sweep_table_lists_every_k_with_its_score_and_marks_the_cliff(tmp_path) -> None:
    store = RunStore(tmp_path)
    run = make_sweep_run(store, num_layers=6, cliff_layer=3)
    result = run.result()
    text = _show(tmp_path, run.id)
    rows = _rows(text, "k")
    points = {p["k"]: p for p in result["points"]}
    assert set(rows) == {str(k) for k in points} | {"base"}
    for k, point in points.items():
        assert float(rows[str(k)][0]) == round(point["score"], 3)
        assert float(rows[str(k)][1]) == round(point["delta"], 3)
    assert float(rows["base"][0]) == round(result["baseline"]["score"], 3)
    marked = [line for line in text.splitlines() if "◀ cliff" in line]
    assert len(marked) == 1 and marked[0].split()[0] == str(result["cliff"]["layer"])


def test_analysis_table_has_one_row_per_layer_with_the_mean_mass(tmp_path) -> None:
    store = RunStore(tmp_path)
    run = make_analysis_run(store, num_layers=5, cliff_layer=2)
    result = run.result()
    rows = _rows(_show(tmp_path, run.id), "layer")
    assert list(rows) == [str(i) for i in range(5)]
    image = result["flow"]["mass"]["image"]["mean"]
    column = ["system", "image", "instruction", "output"].index("image")
    assert [float(r[column]) for r in rows.values()] == [round(v, 3) for v in image]


def test_a_queued_run_shows_no_table(tmp_path) -> None:
    store = RunStore(tmp_path)
    run = make_sweep_run(store, num_layers=4, ks=[], status="queued")
    text = _show(tmp_path, run.id)
    assert "per truncation layer" not in text

"""A run kind and a token strategy added from the test suite alone (tests/toy_plugin.py).

They are registered at run time in this process, and reach the detached worker through the
`cliffscope.kinds` / `cliffscope.strategies` entry points of a distribution written into a
temporary folder on its PYTHONPATH. Then they show up everywhere a built-in does:
`cliffscope --help` and the sweep's `--strategy` choices, the launch form, a finished run's
`runs show`, its Markdown report and its run view (beside its partner's panes).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from cliffscope.cli.main import cli
from cliffscope.kinds import registry as kinds
from cliffscope.kinds.sweep import SweepParams
from cliffscope.store import RunDir, RunStore
from cliffscope.strategies import registry as strategies
from tests import toy_plugin
from tests.fake_runs import make_analysis_run
from tests.test_tui_support import make_app, shows, wait_for

SIZE = (100, 30)

ROOT = Path(__file__).resolve().parents[1]
ENTRY_POINTS = """[cliffscope.kinds]
toy = tests.toy_plugin:KIND

[cliffscope.strategies]
half = tests.toy_plugin:HalfStrategy
"""


def write_distribution(folder: Path) -> Path:
    """A minimal installed distribution (dist-info) that declares the toy entry points."""
    info = folder / "toy_plugin-0.0.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-plugin\nVersion: 0.0.0\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    return folder


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The toy kind and strategy, registered here; the worker finds them by entry point."""
    site = write_distribution(tmp_path / "site")
    path = os.pathsep.join([str(site), str(ROOT), os.environ.get("PYTHONPATH", "")])
    monkeypatch.setenv("PYTHONPATH", path.rstrip(os.pathsep))
    kinds.register_kind(toy_plugin.KIND)
    strategies.register_strategy("half", toy_plugin.HalfStrategy)
    yield tmp_path
    kinds.unregister_kind("toy")
    strategies.unregister_strategy("half")


def _cli(runs: Path, *args: str) -> str:
    out = CliRunner(env={"COLUMNS": "200"}).invoke(cli, ["--runs-dir", str(runs), *args])
    assert out.exit_code == 0, out.output
    return out.output


def test_entry_points_are_discovered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(write_distribution(tmp_path / "site")))
    kinds.refresh_plugins()
    strategies.refresh_plugins()
    try:
        assert "toy" in kinds.kind_names() and kinds.get_kind("toy") is toy_plugin.KIND
        assert "half" in strategies.list_strategies()
        assert strategies.make_strategy("half").kept(16) == 8
    finally:
        monkeypatch.undo()
        kinds.refresh_plugins()
        strategies.refresh_plugins()
    assert "toy" not in kinds.kind_names()  # gone with its distribution


def test_help_lists_the_kind_and_the_strategy(plugin) -> None:
    runs = plugin / "runs"
    assert "Count the words of every question" in _cli(runs, "--help")
    assert "--words" in _cli(runs, "toy", "--help")
    assert "[all|fastv|half]" in _cli(runs, "sweep", "--help")
    assert SweepParams.parse({"strategy": "half", "layers": "0:2"}).token_strategy().kept(10) == 5


def test_a_toy_run_finishes_and_shows_in_runs_show_and_the_report(plugin) -> None:
    runs = plugin / "runs"
    args = ["toy", "-p", "demo", "-t", "shapes-vqa", "--limit", "4", "--strategy", "half"]
    run_id = _cli(runs, *args, "--words", "4").splitlines()[0].strip()
    run = RunDir(runs / run_id)
    assert run.status.value == "done", (run.spec.get("error"), run.events()[-3:])
    assert run.spec["params"] == {"words": 4, "strategy": "half"}
    assert len(run.samples()) == 4 and run.result()["strategy"] == "half"

    shown = _cli(runs, "runs", "show", run_id)
    assert "image tokens kept of 16" in shown and "toy: the half strategy" in shown
    assert run_id in _cli(runs, "runs", "list", "--kind", "toy")

    # an analysis of the same model and task: the two kinds' cliffs meet in the report
    analysis = make_analysis_run(RunStore(runs), num_layers=4, profile="demo")
    analysis.update_spec(profile=run.spec["profile"])

    from cliffscope.report import export_runs

    report = export_runs([run, analysis], plugin / "report", formats=("md", "json"))
    summary = (plugin / "report" / run_id / "summary.md").read_text()
    assert summary.startswith(f"# cliffscope toy report: {run_id}")
    assert "## Toy section" in summary and "kept [8, 8, 8, 8]" in summary
    assert "| toy estimate | 1 | 0.250 |" in summary  # its own cliff, beside the partner's
    assert "| attention flow |" in summary and "The toy cliff is made up." in summary
    other = (plugin / "report" / analysis.id / "summary.md").read_text()
    assert "| toy estimate | 1 |" in other  # the analysis sees the kind that named it
    compare = report.markdown.read_text()
    assert "toy cliff (depth)" in compare.splitlines()[4]
    data = json.loads((plugin / "report" / run_id / "data" / "summary.json").read_text())
    assert [c["estimate"] for c in data["cliffs"]] == ["attention flow", "toy estimate"]


async def test_the_launch_form_and_the_run_view_have_the_kind(plugin) -> None:
    from cliffscope.tui.screens.launch import LaunchScreen
    from cliffscope.tui.screens.run_view import RunViewScreen

    runs = plugin / "runs"
    store = RunStore(runs)
    analysis = make_analysis_run(store, num_layers=4, model="builtin:demo", profile="demo")
    app = make_app(runs)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.loaded)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, LaunchScreen))
        form = app.screen
        assert "toy" in [value for _, value in form.query_one("#kind")._options]
        assert "half" in [value for _, value in form.query_one("#sweep-strategy")._options]
        form.query_one("#kind").value = "toy"
        await pilot.pause()
        assert form.query_one("#toy-words").parent.display
        assert not form.query_one("#sweep-layers").parent.display
        await pilot.press("escape")
        app.open_run(analysis.id)
        await wait_for(pilot, lambda: isinstance(app.screen, RunViewScreen))
        view = app.screen
        assert view.tabs == ("flow", "maps", "sweep", "toy", "samples", "log")
        await pilot.press("4")
        await wait_for(pilot, shows(pilot, "no toy of this model and task yet"))


def test_nothing_under_the_package_knows_the_plugin() -> None:
    assert not Path(toy_plugin.__file__).resolve().is_relative_to(ROOT / "cliffscope")
    for source in (ROOT / "cliffscope").rglob("*.py"):
        text = source.read_text(encoding="utf-8")
        assert "toy_plugin" not in text and "HalfStrategy" not in text, source

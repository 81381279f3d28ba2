"""Pilot tests of the dashboard on fake runs: table, live updates, run view, compare, export,
help and the GPU panel. Workers are not involved here (see test_tui_live.py)."""

from __future__ import annotations

from cliffscope.store.jsonl import append_jsonl
from cliffscope.tui.capture import screen_text
from cliffscope.tui.gpu import GpuStat
from cliffscope.tui.screens.run_view import RunViewScreen
from cliffscope.tui.widgets.runs_table import RunsTable
from tests.fake_runs import make_analysis_run, make_sweep_run
from tests.test_tui_support import fake_store, make_app, shows, wait_for

SIZE = (100, 30)


async def test_runs_table_shows_filters_and_sorts(tmp_path) -> None:
    fake_store(tmp_path / "runs")
    app = make_app(tmp_path / "runs")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.loaded and len(app.query_one(RunsTable).shown) == 3)
        text = screen_text(app)
        assert "analysis" in text and "failed" in text and "0.900" in text
        table = app.query_one(RunsTable)
        assert [r.id for r in table.shown] == sorted((r.id for r in table.shown), reverse=True)
        await pilot.press("slash", *"llava-1.5", "enter")
        await wait_for(pilot, lambda: len(table.shown) == 1, what="filter to one run")
        assert table.shown[0].profile == "llava-1.5-7b"
        await pilot.press("escape")
        await wait_for(pilot, lambda: len(table.shown) == 3, what="filter cleared")
        await pilot.press("s")  # age -> status
        assert app.screen.sort_key == "status"
        statuses = [r.status for r in table.shown]
        assert statuses == sorted(statuses)


async def test_run_made_elsewhere_appears_and_progress_moves(tmp_path) -> None:
    """A run created by the CLI (another process) shows up live, and so does its progress."""
    store = fake_store(tmp_path / "runs")
    app = make_app(tmp_path / "runs")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(app.runs) == 3)
        run = make_sweep_run(store, seed=9, ks=[0], status="queued", task="shapes-caption")
        await wait_for(pilot, lambda: len(app.runs) == 4, what="new run in the table")
        assert app.row(run.id).done == 1
        run.append_event("progress", done=7, total=9)
        await wait_for(pilot, lambda: app.row(run.id).done == 7, what="progress update")
        assert "7/9" in screen_text(app)


async def test_run_view_fills_in_as_the_run_grows(tmp_path) -> None:
    store = fake_store(tmp_path / "runs")
    sweep = make_sweep_run(store, seed=5, ks=[0, 1], status="queued", task="shapes-caption")
    app = make_app(tmp_path / "runs")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.row(sweep.id) is not None)
        app.open_run(sweep.id)
        await wait_for(
            pilot,
            lambda: isinstance(app.screen, RunViewScreen) and app.screen.query("#sweep-table"),
        )
        view = app.screen
        table = view.query_one("#sweep-table")
        await wait_for(pilot, lambda: table.row_count == 2, what="two sweep points")
        samples = view.samples
        await pilot.pause(0.5)
        assert samples.count == 0  # samples are read only once their tab is opened
        await pilot.press("4")
        await wait_for(pilot, lambda: samples.count == 20)
        lines_before = sum(len(v) for v in samples.view.samples.values())
        # the worker finishes two more k: new sample lines and a rewritten result.json
        result = sweep.result()
        for k in (2, 3):
            for sid in list(samples.view.samples)[:20]:
                append_jsonl(
                    sweep.path / "samples.jsonl",
                    {"key": f"{sid}@{k}", "id": sid, "k": k, "prediction": "red", "score": 1.0},
                )
            result["points"].append(dict(result["points"][-1], k=k, score=0.95))
        sweep.write_result(result)
        await wait_for(pilot, lambda: table.row_count == 4, what="table update")
        await wait_for(
            pilot, lambda: sum(len(v) for v in samples.view.samples.values()) == lines_before + 40
        )
        plot = view.query_one("SweepPlot")
        assert plot.series["score"][0] == [0, 1, 2, 3]
        assert plot.series["score"][1][2:] == [0.95, 0.95]
        await wait_for(pilot, shows(pilot, "flipped at k"))
        await pilot.press("3")
        assert view.query_one("#sweep-table").row_count == 4
        await pilot.press("escape")
        assert not isinstance(app.screen, RunViewScreen)


async def test_flow_and_maps_tabs(tmp_path) -> None:
    store = fake_store(tmp_path / "runs")
    analysis = next(r for r in store.list() if r.kind == "analysis")
    app = make_app(tmp_path / "runs")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.loaded)
        app.open_run(analysis.id)
        await wait_for(pilot, shows(pilot, "flow cliff 3 [2–4]"), what="flow cliff line")
        # the partner sweep's cliff is shown beside it
        await wait_for(pilot, shows(pilot, "sweep cliff 2"), what="partner sweep cliff")
        await pilot.press("d")
        await wait_for(pilot, shows(pilot, "attention density per layer"))
        await pilot.press("2")
        await wait_for(pilot, shows(pilot, "sample s-000000"), what="map loaded")
        maps = app.screen.query_one("MapsPane")
        start = maps.map_layer
        await pilot.press("right", "right")
        assert maps.map_layer == start + 2
        await pilot.press("t")
        await wait_for(pilot, shows(pilot, "LLaVA-CAM"))
        await pilot.press("down")
        await wait_for(pilot, shows(pilot, "sample s-000001"))
        heat = app.screen.query_one("#heatmap HalfBlocks")
        line = heat.render_line(heat.size.height // 2)
        assert "▀" in line.text and len({seg.style for seg in line}) > 3


async def test_compare_and_export_marked_runs(tmp_path, monkeypatch) -> None:
    fake_store(tmp_path / "runs")
    monkeypatch.chdir(tmp_path)
    app = make_app(tmp_path / "runs")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(app.query_one(RunsTable).shown) == 3)
        await pilot.press("down", "space", "space")  # marks the 2nd and 3rd newest
        assert len(app.screen.marked) == 2
        await pilot.press("c")
        await wait_for(pilot, lambda: app.screen.query_one("#compare-table").row_count == 2)
        text = screen_text(app)
        assert "image attention mass" in text and "score − baseline" in text
        await pilot.press("e")
        await wait_for(pilot, shows(pilot, "folder"))
        await pilot.press("enter")
        await wait_for(pilot, shows(pilot, "Markdown:"), timeout=60, what="export finished")
        await wait_for(pilot, shows(pilot, "cliffscope comparison of 2 runs"), what="the Markdown")
    reports = list(tmp_path.glob("cliffscope-report-*/compare.md"))
    assert len(reports) == 1 and "cliffscope comparison of 2 runs" in reports[0].read_text()


async def test_help_lists_the_screens_own_keys(tmp_path) -> None:
    fake_store(tmp_path / "runs")
    app = make_app(tmp_path / "runs")
    async with app.run_test(size=(100, 40)) as pilot:
        await wait_for(pilot, lambda: app.loaded)
        await pilot.press("question_mark")
        await wait_for(pilot, shows(pilot, "Help — Runs"))
        text = screen_text(app)
        for words in ("Mark", "Filter", "Compare", "Resume", "Command palette"):
            assert words in text
        await pilot.press("escape")
        assert "Help — Runs" not in screen_text(app)


class FakeProbe:
    def __init__(self, gpus) -> None:
        self.gpus = gpus

    def read(self):
        return self.gpus


async def test_gpu_panel_only_with_gpus(tmp_path) -> None:
    gpu = GpuStat(0, "NVIDIA H100 80GB HBM3", 40 * 1024**3, 80 * 1024**3, 73)
    app = make_app(tmp_path / "runs", gpu_probe=FakeProbe((gpu,)))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, shows(pilot, "GPU0 NVIDIA H100"), what="GPU panel")
        assert "40.0/80 GiB" in screen_text(app) and "73%" in screen_text(app)
    app = make_app(tmp_path / "runs", gpu_probe=FakeProbe(None))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.loaded)
        await pilot.pause(0.2)
        assert not app.screen.query_one("GpuPanel").display
        assert app.gpu_probe is None  # asked once, then left alone


async def test_corrupt_run_dir_is_listed_not_fatal(tmp_path) -> None:
    store = fake_store(tmp_path / "runs")
    broken = make_analysis_run(store, seed=7, task="shapes-caption")
    (broken.path / "run.toml").write_text("this is = = not toml", encoding="utf-8")
    (broken.path / "result.json").write_text("{", encoding="utf-8")
    app = make_app(tmp_path / "runs")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(app.runs) == 4)
        assert app.row(broken.id).status == "unreadable"
        app.open_run(broken.id)
        await pilot.pause(0.3)
        assert isinstance(app.screen, RunViewScreen)


async def test_launch_form_refuses_bad_fields(tmp_path) -> None:
    import shutil

    from cliffscope import paths
    from cliffscope.tui.screens.launch import LaunchScreen

    (tmp_path / "profiles").mkdir()
    shutil.copy(paths.BUILTIN_PROFILES_DIR / "demo.toml", tmp_path / "profiles")
    app = make_app(tmp_path / "runs", tmp_path / "profiles")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, LaunchScreen))
        await pilot.press("enter", "down", "enter")  # sweep
        form = app.screen
        form.query_one("#sweep-layers").value = "8:2"
        await pilot.press("ctrl+s")
        await wait_for(pilot, shows(pilot, "cannot read --layers"))
        form.query_one("#sweep-layers").value = "0:4"
        form.query_one("#sweep-keep-ratio").value = "0.5"  # a keep ratio alone: FastV
        await pilot.press("ctrl+s")
        await wait_for(pilot, shows(pilot, "so k must be"))
        form.query_one("#sweep-strategy").value = "all"
        await pilot.press("ctrl+s")
        await wait_for(pilot, shows(pilot, "takes no keep ratio"))
        form.query_one("#sweep-keep-ratio").value = ""
        form.query_one("#limit").value = "0"
        await pilot.press("ctrl+s")
        await wait_for(pilot, shows(pilot, "limit must be at least 1"))
        form.query_one("#limit").value = "4"
        form.query_one("#max-new-tokens").value = "0"
        await pilot.press("ctrl+s")
        await wait_for(pilot, shows(pilot, "max tokens must be at least 1"))
        assert isinstance(app.screen, LaunchScreen)
    assert not any((tmp_path / "runs").iterdir())  # nothing was created


async def test_launch_form_max_new_tokens_reaches_the_run(tmp_path, monkeypatch) -> None:
    """Typed in the form, the cap lands in run.toml's [params]; left empty, it is absent."""
    import shutil

    from cliffscope import paths
    from cliffscope.store import RunDir
    from cliffscope.tui.screens.launch import LaunchScreen
    from tests.test_tui_support import fake_worker

    fake_worker(tmp_path, monkeypatch)
    (tmp_path / "profiles").mkdir()
    shutil.copy(paths.BUILTIN_PROFILES_DIR / "demo.toml", tmp_path / "profiles")
    app = make_app(tmp_path / "runs", tmp_path / "profiles")
    async with app.run_test(size=SIZE) as pilot:
        for n, typed in enumerate(["7", ""], start=1):  # the limit (n) tells the runs apart
            await pilot.press("n")
            await wait_for(pilot, lambda: isinstance(app.screen, LaunchScreen))
            form = app.screen
            assert form.query_one("#max-new-tokens").parent.display  # shown for an analysis
            form.query_one("#limit").value = str(n)
            form.query_one("#max-new-tokens").value = typed
            await pilot.press("ctrl+s")
            await wait_for(pilot, lambda n=n: len(app.runs) == n, what="the launched run")
            await wait_for(pilot, lambda: not isinstance(app.screen, LaunchScreen))
    specs = [RunDir(row.path).spec for row in app.runs]
    params = {len(spec["subset"]["ids"]): spec["params"] for spec in specs}
    assert params[1]["max_new_tokens"] == 7
    assert "max_new_tokens" not in params[2]


def test_tui_command_is_wired_into_the_cli() -> None:
    from click.testing import CliRunner

    from cliffscope.cli.main import cli

    result = CliRunner().invoke(cli, ["tui", "--help"])
    assert result.exit_code == 0 and "dashboard" in result.output


async def test_command_palette_offers_screens_and_runs(tmp_path) -> None:
    fake_store(tmp_path / "runs")
    app = make_app(tmp_path / "runs")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(app.runs) == 3)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for title in ("Profiles", "New sweep", "Compare marked runs", "Export marked runs"):
            assert title in titles
        assert sum(t.startswith("Open ") for t in titles) == 3
        opener = next(c for c in app.get_system_commands(app.screen) if c.title.startswith("Open "))
        opener.callback()
        await wait_for(pilot, lambda: isinstance(app.screen, RunViewScreen))

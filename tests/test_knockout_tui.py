"""The knockout kind in the dashboard: its Knockout tab (one curve per edge, its cliff and the
other kinds' estimates), the tab on its partners' run views, and its Samples view."""

from __future__ import annotations

from cliffscope.tui.screens.run_view import RunViewScreen
from tests.fake_knockout import make_knockout_run
from tests.test_tui_support import fake_store, make_app, shows, tab_key, wait_for

SIZE = (100, 30)
EDGES = ["image->last", "image->instruction", "instruction->last", "system->last"]


def _store(tmp_path):
    store = fake_store(tmp_path / "runs")
    knockout = make_knockout_run(store, cliff_layer=3, id_prefix="shapes")
    analysis = next(r for r in store.list() if r.kind == "analysis")
    return knockout, analysis


async def _open(pilot, app, run_id: str) -> RunViewScreen:
    await wait_for(pilot, lambda: app.loaded)
    app.open_run(run_id)
    await wait_for(pilot, lambda: isinstance(app.screen, RunViewScreen) and app.screen.partners)
    return app.screen


async def test_the_knockout_tab_draws_every_edge_and_every_estimate(tmp_path) -> None:
    knockout, _ = _store(tmp_path)
    app = make_app(tmp_path / "runs")
    async with app.run_test(size=SIZE) as pilot:
        view = await _open(pilot, app, knockout.id)
        assert view.tabs == ("flow", "maps", "sweep", "knockout", "samples", "log")
        plot = view.query_one("KnockoutPlot")
        await wait_for(pilot, lambda: set(plot.series) == set(EDGES), what="four edge curves")
        xs, ys = plot.series["image->last"]
        assert xs == list(range(8)) and ys[0] < -0.7 and abs(ys[-1]) < 0.05
        assert plot.markers["cliff"] == 3 and plot.markers["tolerance"] == -0.05
        assert "sweep cliff" in plot.markers  # the partners' estimates, in their colours
        table = view.query_one("#knockout-table")
        assert table.row_count == 8
        await wait_for(pilot, shows(pilot, "knockout cliff"))
        await pilot.press(tab_key(view, "samples"))
        pane = view.query_one("SamplesPane")
        await wait_for(pilot, lambda: pane.query_one("#samples-table").row_count == 20)
        await wait_for(pilot, shows(pilot, "relative change of p(answer)"))


async def test_an_analysis_shows_its_partner_knockout(tmp_path) -> None:
    knockout, analysis = _store(tmp_path)
    app = make_app(tmp_path / "runs")
    async with app.run_test(size=SIZE) as pilot:
        view = await _open(pilot, app, analysis.id)
        await wait_for(pilot, lambda: "knockout" in view.partners)
        await pilot.press(tab_key(view, "knockout"))
        plot = view.query_one("KnockoutPlot")
        await wait_for(pilot, lambda: set(plot.series) == set(EDGES), what="partner curves")
        assert plot.markers["cliff"] == 3
        await wait_for(pilot, shows(pilot, knockout.id))


async def test_the_launch_form_offers_the_knockout_kind(tmp_path) -> None:
    from cliffscope.tui.screens.launch import LaunchScreen

    _store(tmp_path)
    app = make_app(tmp_path / "runs")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.loaded)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, LaunchScreen))
        form = app.screen
        assert "knockout" in [value for _, value in form.query_one("#kind")._options]
        form.query_one("#kind").value = "knockout"
        await pilot.pause()
        for field in ("edges", "window", "layers", "tolerance", "cliff-on", "engine"):
            assert form.query_one(f"#knockout-{field}").parent.display, field
        assert not form.query_one("#sweep-layers").parent.display

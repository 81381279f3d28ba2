"""The Samples tab: the selected sample's picture (from the run's images/, else redrawn from
the task in run.toml, always off the UI thread), question, references and answers per k."""

from __future__ import annotations

import threading

import numpy as np

from cliffscope.tasks.registry import task_from_snapshot
from cliffscope.tui.sample_source import SampleSource, SampleView
from cliffscope.tui.sample_text import analysis_detail, flips, k_runs, sweep_detail
from cliffscope.tui.screens.run_view import RunViewScreen
from cliffscope.tui.widgets.samples_pane import fit
from tests.test_tui_support import fake_store, make_app, wait_for

SIZE = (100, 30)


def _cells(halfblocks) -> np.ndarray:
    """The pixels a HalfBlocks widget shows: (2 * rows, cols, 3), upper then lower pixel."""
    rows = []
    for y in range(halfblocks.size.height):
        line = list(halfblocks.render_line(y))
        top = [seg.style.color.triplet for seg in line if seg.text == "▀"]
        bottom = [seg.style.bgcolor.triplet for seg in line if seg.text == "▀"]
        if top:
            rows += [top, bottom]
    return np.array(rows, dtype=int)


async def _open_samples(pilot, app, run_id: str):
    await wait_for(pilot, lambda: app.loaded)
    app.open_run(run_id)
    await wait_for(pilot, lambda: isinstance(app.screen, RunViewScreen))
    await pilot.pause(0.2)
    await pilot.press("4")
    pane = app.screen.query_one("SamplesPane")
    await wait_for(pilot, lambda: pane.query_one("#samples-table").row_count == 20)
    return pane


def _text(pane) -> str:
    return str(pane.query_one("#sample-text").render())


async def test_sweep_sample_shows_its_redrawn_picture_question_and_answers(tmp_path, monkeypatch):
    store = fake_store(tmp_path / "runs")
    sweep = next(r for r in store.list() if r.kind == "sweep" and r.status.value == "done")
    threads: list[bool] = []
    real_get = SampleSource.get

    def get(self, sample_id, image_file=None):
        threads.append(threading.current_thread() is threading.main_thread())
        return real_get(self, sample_id, image_file)

    monkeypatch.setattr(SampleSource, "get", get)
    app = make_app(tmp_path / "runs")
    async with app.run_test(size=SIZE) as pilot:
        pane = await _open_samples(pilot, app, sweep.id)
        await wait_for(pilot, lambda: "redrawn from task" in _text(pane), what="picture")
        sid = pane.selected
        text = _text(pane)
        by_k = pane.view.samples[sid]
        assert "What colour is the shape?" in text and "baseline" in text
        assert f"reference  {by_k['base']['references'][0]}" in text
        flipped = flips(by_k)
        assert (f"flips at k = {', '.join(map(str, flipped))}" in text) == bool(flipped)
        for ks, _ in k_runs(by_k):
            assert (f"k {ks[0]}–{ks[-1]}" if len(ks) > 1 else f"k {ks[0]}") in text
        blocks = pane.query_one("#sample-picture HalfBlocks")
        shown = _cells(blocks)
        task = task_from_snapshot(sweep.spec["task"])
        want = fit(task.get(sid).image, blocks.size.width, 2 * blocks.size.height)
        assert np.array_equal(shown, want.astype(int))  # the sample's own scene, every pixel
        await pilot.press("down")
        await wait_for(pilot, lambda: pane.selected != sid and "redrawn" in _text(pane))
        assert not np.array_equal(_cells(blocks), shown)  # the next sample's scene
    assert threads and not any(threads)  # never looked up on the UI thread


async def test_analysis_samples_use_the_runs_images_and_show_masses(tmp_path) -> None:
    store = fake_store(tmp_path / "runs")
    analysis = next(r for r in store.list() if r.kind == "analysis")
    app = make_app(tmp_path / "runs")
    async with app.run_test(size=SIZE) as pilot:
        pane = await _open_samples(pilot, app, analysis.id)
        await wait_for(pilot, lambda: "image from images/" in _text(pane), what="run's image")
        text = _text(pane)
        assert pane.selected == "s-000000" and "What colour is the shape?" in text
        assert "mass per layer 0–7" in text and "even 0.53" in text
        assert pane.query_one("#sample-picture HalfBlocks")._lines
        for _ in range(5):  # s-000005: no image file, and the fake ids are not the task's
            await pilot.press("down")
        await wait_for(pilot, lambda: "no image" in _text(pane), what="missing picture")
        assert "has no sample 's-000005'" in _text(pane)
        assert not pane.query_one("#sample-picture HalfBlocks")._lines


def test_answers_fold_into_runs_of_k_and_show_token_ids() -> None:
    by_k = {
        "base": {"prediction": "red", "score": 1.0, "answer_ids": [319, 2]},
        0: {"prediction": "blue", "score": 0.0},
        1: {"prediction": "blue", "score": 0.0},
        2: {"prediction": "red", "score": 1.0},
        3: {"prediction": "red", "score": 1.0},
    }
    assert [ks for ks, _ in k_runs(by_k)] == [[0, 1], [2, 3]]
    view = SampleView(None, "What colour?", ["red"], note="no image: gone")
    text = str(sweep_detail("s", by_k, view))
    assert "What colour?" in text and "reference  red" in text and "no image: gone" in text
    assert "ids 319 2" in text
    assert "k 0–1      'blue'  0.00  flip" in text and "k 2–3      'red'  1.00\n" in text
    assert text.endswith("flips at k = 0, 1")


def test_analysis_detail_scales_every_group_alike() -> None:
    values = np.array([[0.5, 0.5, 0.0, 0.0], [0.25, 0.25, 0.5, 0.5]], dtype=np.float16)
    rec = {"prediction": "red", "score": 1.0, "mass": (("image", "system"), values), "cliff": 1}
    text = str(analysis_detail("s", rec, None))
    image_line = next(line for line in text.splitlines() if line.startswith("image"))  # noqa: E501
    system_line = next(line for line in text.splitlines() if line.startswith("system"))
    assert image_line.split()[1] == "██▁▁" and system_line.split()[1] == "▅▅██"
    assert text.endswith("cliff at layer 1")

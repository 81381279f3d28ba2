"""Figures from awkward inputs: map layouts, missing images, gaps in curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cliffscope.report import figures, textplot

GRIDS = [
    {"label": "base", "rows": 2, "cols": 2, "box": [0, 0, 40, 30]},
    {"label": "tile", "rows": 1, "cols": 3, "box": [0, 0, 20, 15]},
]


def test_grid_arrays_accept_flat_and_per_grid_lists() -> None:
    flat = {"grids": GRIDS, "attention": {"3": [1, 2, 3, 4, 5, 6, 7]}}
    nested = {"grids": GRIDS, "attention": {"3": [[1, 2, 3, 4], [5, 6, 7]]}}
    for doc in (flat, nested):
        base, tile = figures.grid_arrays(doc, "attention", 3)
        assert base.tolist() == [[1, 2], [3, 4]] and tile.tolist() == [[5, 6, 7]]
    assert figures.grid_arrays(flat, "attention", 4) is None  # layer absent
    assert figures.grid_arrays({"grids": GRIDS, "cam": {"3": [1, 2]}}, "cam", 3) is None
    wrong = {"grids": GRIDS, "cam": {"3": [[1, 2, 3], [5, 6, 7]]}}
    assert figures.grid_arrays(wrong, "cam", 3) is None


def test_maps_figure_without_image_or_cam(tmp_path: Path) -> None:
    from PIL import Image

    doc = {"grids": GRIDS, "attention": {"0": [[0.1] * 4, [0.2] * 3], "5": [[0.3] * 4, [0.0] * 3]}}
    path = figures.maps_figure(doc, tmp_path / "absent.png", [0, 5], tmp_path / "m.png", "t $x$")
    with Image.open(path) as img:
        assert img.size == figures.pixel_size(figures.maps_size(2))


def test_curves_with_gaps_still_draw(tmp_path: Path) -> None:
    from PIL import Image

    nan = None
    result = {
        "kind": "analysis",
        "num_layers": 4,
        "flow": {"mass": {"image": {"mean": [0.5, nan, 0.1, 0.1], "lo": [], "hi": []}}},
        "cliff": {"layer": None, "verdict": "no-collapse"},
    }
    with Image.open(figures.flow_figure(result, tmp_path / "f.png")) as img:
        assert img.size == figures.pixel_size(figures.FLOW_SIZE)
    text = textplot.flow_textplot(result)
    assert text is not None and "image" in text.splitlines()[-1]
    assert "\x1b" not in text and all(line == line.rstrip() for line in text.splitlines())
    assert textplot.flow_textplot({"num_layers": 4, "flow": {}}) is None


@pytest.mark.parametrize("n", [4, 32, 80])
def test_textplot_ticks_are_whole_layers(n: int) -> None:
    ticks = textplot._int_ticks(n)
    assert ticks[0] == 0 and ticks[-1] <= n - 1 and len(ticks) <= 9
    assert np.all(np.diff(ticks) > 0)

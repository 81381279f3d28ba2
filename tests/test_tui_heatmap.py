"""Half-block maps: the map lands on its box, the image shows elsewhere, aspect is kept."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cliffscope.tui.widgets.heatmap import MapGrid, colormap, compose, split_values, strips


def test_colormap_runs_dark_to_bright() -> None:
    low, mid, high = colormap(np.array([0.0, 0.5, 1.0]))
    assert low.sum() < mid.sum() < high.sum()
    assert colormap(np.array([-3.0]))[0].tolist() == low.tolist()  # clipped, not wrapped


def test_map_is_drawn_inside_its_box_only() -> None:
    image = Image.new("RGB", (80, 40), (0, 200, 0))  # green everywhere
    grid = MapGrid(rows=2, cols=2, box=(40, 0, 80, 40))  # right half of the image
    values = [np.array([[0.0, 1.0], [0.0, 0.0]])]  # hot top-right token
    px = compose(image, (80, 40), [grid], values, width=40, height=10).astype(int)
    assert px.shape == (20, 40, 3)  # 40 wide x 20 tall pixels: aspect 2:1 kept
    left = px[:, :20]
    assert (left == [0, 200, 0]).all()  # untouched image outside the box
    hot, cold = px[2, 35], px[15, 25]
    assert hot[0] > 150 and hot.sum() > cold.sum()  # hot token bright (inferno: yellow/orange)


def test_split_values_follows_grid_order_and_checks_length() -> None:
    grids = [MapGrid(1, 2, (0, 0, 1, 1)), MapGrid(2, 1, (0, 0, 1, 1))]
    a, b = split_values(grids, [1, 2, 3, 4])
    assert a.tolist() == [[1, 2]] and b.tolist() == [[3], [4]]
    with pytest.raises(ValueError):
        split_values(grids, [1, 2, 3])


def test_half_blocks_pair_upper_and_lower_pixels() -> None:
    px = np.zeros((2, 1, 3), dtype=np.uint8)
    px[0, 0] = (255, 0, 0)
    px[1, 0] = (0, 0, 255)
    (line,) = strips(px)
    (segment,) = list(line)
    assert segment.text == "▀"
    assert segment.style.color.triplet == (255, 0, 0) and segment.style.bgcolor.triplet == (
        0,
        0,
        255,
    )


def test_split_values_reads_the_workers_per_grid_lists() -> None:
    grids = [MapGrid(2, 2, (0, 0, 4, 4)), MapGrid(1, 3, (0, 0, 3, 1))]
    a, b = split_values(grids, [[1, 2, 3, 4], [5, 6, 7]])
    assert a.tolist() == [[1, 2], [3, 4]] and b.tolist() == [[5, 6, 7]]
    with pytest.raises(ValueError):
        split_values(grids, [[1, 2, 3, 4]])  # a grid's values are missing

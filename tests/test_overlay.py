"""Maps over images (report.overlay, report.mapfile): each grid lands on its box, overlapping
grids get their own panel, aspect is kept, map paths stay inside the run, and the exported
band PNG is the same blend."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from cliffscope.report.mapfile import LoadedMap, MapGrid, load_map, split_values
from cliffscope.report.overlay import (
    DIM,
    band_png,
    blend,
    colormap,
    layer_bands,
    panel_groups,
    peak,
)


def test_colormap_runs_dark_to_bright() -> None:
    low, mid, high = colormap(np.array([0.0, 0.5, 1.0]))
    assert low.sum() < mid.sum() < high.sum()
    assert colormap(np.array([-3.0]))[0].tolist() == low.tolist()  # clipped, not wrapped


def test_map_is_drawn_inside_its_box_and_the_rest_is_dimmed() -> None:
    image = Image.new("RGB", (80, 40), (0, 200, 0))  # green everywhere
    grid = MapGrid(rows=2, cols=2, box=(40, 0, 80, 40))  # right half of the image
    values = [np.array([[0.0, 1.0], [0.0, 0.0]])]  # hot top-right token
    px = blend(image, (80, 40), [grid], values, width=40, height=20).astype(int)
    assert px.shape == (20, 40, 3)  # 40 wide x 20 tall pixels: aspect 2:1 kept
    left = px[:, :20]
    assert (left == [0, round(200 * DIM), 0]).all()  # outside every box: the image, dimmed
    hot, cold = px[2, 35], px[15, 25]
    assert hot[0] > 150 and hot.sum() > cold.sum()  # hot token bright (inferno: yellow/orange)


def test_fits_the_smaller_side_of_the_area() -> None:
    image = Image.new("RGB", (336, 336), (10, 10, 10))
    grid = MapGrid(24, 24, (0, 0, 336, 336))
    px = blend(image, (336, 336), [grid], [np.zeros((24, 24))], width=900, height=450)
    assert px.shape[:2] == (450, 450)


def test_overlapping_grids_get_a_panel_each_side_by_side() -> None:
    # LLaVA-NeXT: a coarse base view and finer anyres tiles, both over the whole image
    base = MapGrid(2, 2, (0, 0, 60, 30), "base")
    anyres = MapGrid(4, 8, (0, 0, 60, 30), "anyres")
    assert panel_groups([base, anyres]) == [[0], [1]]
    # tiles side by side do not overlap: one panel
    left, right = MapGrid(1, 1, (0, 0, 30, 30)), MapGrid(1, 1, (30, 0, 60, 30))
    assert panel_groups([left, right]) == [[0, 1]]
    image = Image.new("RGB", (60, 30), (255, 255, 255))
    hot_base = [np.array([[1.0, 0.0], [0.0, 0.0]]), np.zeros((4, 8))]
    px = blend(image, (60, 30), [base, anyres], hot_base, width=200, height=100).astype(int)
    assert px.shape[0] == 48 and 195 <= px.shape[1] <= 200  # two 2:1 panels and a gap fit 200 wide
    half = px.shape[1] // 2
    first, second = px[:, : half - 2], px[:, half + 2 :]
    assert first[:5, :5].mean() > second[:5, :5].mean() + 40  # only the base panel is hot


def test_split_values_follows_grid_order_and_checks_length() -> None:
    grids = [MapGrid(1, 2, (0, 0, 1, 1)), MapGrid(2, 1, (0, 0, 1, 1))]
    a, b = split_values(grids, [1, 2, 3, 4])
    assert a.tolist() == [[1, 2]] and b.tolist() == [[3], [4]]
    with pytest.raises(ValueError):
        split_values(grids, [1, 2, 3])
    a, b = split_values(grids, [[1, 2], [3, 4]])  # the worker's per-grid lists
    assert b.tolist() == [[3], [4]]
    with pytest.raises(ValueError):
        split_values(grids, [[1, 2]])  # a grid's values are missing


def test_layer_bands_cover_every_layer_once_in_order() -> None:
    assert layer_bands(list(range(32))) == [list(range(i, i + 8)) for i in (0, 8, 16, 24)]
    assert layer_bands([3, 1, 2]) == [[1], [2], [3]]
    assert layer_bands([]) == []


def _loaded(layers: int = 4) -> LoadedMap:
    grid = MapGrid(2, 2, (0, 0, 40, 40), "base")
    hot = {layer: [[0.0, 0.0, 0.0, 1.0 + layer]] for layer in range(layers)}  # bottom right
    image = Image.new("RGB", (40, 40), (255, 255, 255))
    return LoadedMap(image, (40, 40), [grid], {"attention": hot, "cam": {}}, {})


def test_band_mean_and_png_show_the_same_blend() -> None:
    loaded = _loaded()
    (mean,) = loaded.mean_values("attention", [0, 1])
    assert mean.tolist() == [[0.0, 0.0], [0.0, 1.5]]
    with Image.open(io.BytesIO(band_png(loaded, [0, 1], "t"))) as img:
        rgb = np.asarray(img.convert("RGB")).astype(int)
    expected = blend(loaded.image, (40, 40), loaded.grids, [mean], 1 << 14, 224)
    # the blend is pasted whole somewhere in the PNG (one row: attention; CAM is empty)
    ys, xs = np.nonzero((rgb == expected[0, 0]).all(axis=2))
    found = any(
        (rgb[y : y + 224, x : x + 224] == expected).all()
        for y, x in zip(ys[:50], xs[:50], strict=True)
    )
    assert found and peak([mean]) == 1.5
    with pytest.raises(ValueError):
        band_png(loaded, [7])  # no layer of the band has maps


def test_load_map_refuses_paths_outside_the_run(tmp_path) -> None:
    run = tmp_path / "run"
    (run / "maps").mkdir(parents=True)
    doc = {"grids": [{"rows": 1, "cols": 2, "box": [0, 0, 4, 2]}], "attention": {"0": [[1, 2]]}}
    (run / "maps" / "a.json").write_text(json.dumps(doc))
    (tmp_path / "secret.json").write_text(json.dumps(doc))
    Image.new("RGB", (4, 2)).save(tmp_path / "outside.png")
    loaded = load_map(run, {"file": "maps/a.json", "image": "../outside.png"})
    assert loaded.image is None and loaded.image_size == (4, 2)  # the image was not read
    assert loaded.values("attention", 0)[0].tolist() == [[1.0, 2.0]]
    with pytest.raises(ValueError, match="not inside the run"):
        load_map(run, {"file": "../secret.json"})

"""Image grids land on the right pixels of the original image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cliffscope.models.base import ImageGrid
from cliffscope.models.geometry import clip_view_box, full_box, square_grid
from cliffscope.models.loading import load_adapter
from tests.tiny_models import tiny_profile


def _clip(**kwargs):
    from transformers import CLIPImageProcessor

    return CLIPImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}, **kwargs
    )


def test_clip_box_is_the_centre_square() -> None:
    assert clip_view_box(_clip(), 400, 300) == pytest.approx((50, 0, 350, 300))
    assert clip_view_box(_clip(), 300, 400) == pytest.approx((0, 50, 300, 350))
    assert clip_view_box(_clip(), 64, 64) == pytest.approx((0, 0, 64, 64))


def test_clip_box_matches_processed_pixels() -> None:
    """Paint outside the computed box red: the processor's output must show no red."""
    proc = _clip()
    x0, _, x1, _ = clip_view_box(proc, 400, 300)
    arr = np.full((300, 400, 3), 255, np.uint8)
    arr[:, : int(x0) - 4] = (255, 0, 0)
    arr[:, int(x1) + 4 :] = (255, 0, 0)
    px = proc(images=Image.fromarray(arr), return_tensors="np")["pixel_values"][0]
    assert np.ptp(px[1]) < 0.05  # green channel flat: nothing red made it in
    arr[:, : int(x0) + 20] = (255, 0, 0)  # now red reaches 20 px into the box
    px = proc(images=Image.fromarray(arr), return_tensors="np")["pixel_values"][0]
    assert px[1, :, 0].max() < px[1, :, -1].min()  # left edge darker in green


def test_pad_to_square_box_extends_past_the_image() -> None:
    from transformers import LlavaImageProcessor

    proc = LlavaImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}, do_pad=True
    )
    assert clip_view_box(proc, 400, 300) == pytest.approx((0, -50, 400, 350))


def test_square_grid() -> None:
    assert square_grid(576) == (24, 0)
    assert square_grid(577) == (24, 1)
    assert square_grid(16) == (4, 0)
    assert full_box(40, 30) == (0.0, 0.0, 40.0, 30.0)


def test_image_grid_validates_shape() -> None:
    grid = ImageGrid(positions=[3, 4, 5, 6], rows=2, cols=2, box=(0, 0, 8, 8), label="base")
    assert grid.to_json() == {"label": "base", "rows": 2, "cols": 2, "box": [0, 0, 8, 8]}
    with pytest.raises(ValueError):
        ImageGrid(positions=[1, 2, 3], rows=2, cols=2, box=(0, 0, 1, 1), label="bad")


@pytest.mark.slow
def test_llava_next_layout_matches_processor_counts(tiny_llava_next_path: Path) -> None:
    """For many aspect ratios: base + anyres rows x (cols + newline) = the processor's count."""
    adapter = load_adapter(tiny_profile(tiny_llava_next_path, "llava-next"))
    proc = adapter.processor
    for width, height in [(40, 30), (30, 50), (64, 64), (100, 20), (20, 100), (33, 31), (90, 61)]:
        side, rows, cols = adapter.anyres_shape(width, height)
        n = proc._get_number_of_features(height, width, 32, 32) - 1  # CLS dropped ("default")
        assert side * side + rows * (cols + 1) == n, (width, height)
        # the unpadded anyres grid keeps the image's aspect ratio
        assert abs(cols / rows - width / height) < 0.5 * max(1, width / height)

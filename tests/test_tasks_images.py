"""Every stored image form and PIL mode becomes one 3-channel RGB image, or a clear error."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from cliffscope.errors import ValidationError
from cliffscope.tasks.images import load_rgb, open_image, to_rgb


def _png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize(
    ("image", "pixel"),
    [
        (Image.new("CMYK", (4, 3), (0, 255, 255, 0)), (255, 0, 0)),
        (Image.new("L", (4, 3), 77), (77, 77, 77)),
        (Image.new("1", (4, 3), 1), (255, 255, 255)),
        (Image.new("RGBA", (4, 3), (10, 20, 30, 0)), (255, 255, 255)),  # transparent -> white
        (Image.new("RGBA", (4, 3), (10, 20, 30, 255)), (10, 20, 30)),
        (Image.new("LA", (4, 3), (50, 255)), (50, 50, 50)),
        (Image.new("RGB", (4, 3), (255, 0, 0)).convert("P"), (255, 0, 0)),  # web palette
    ],
)
def test_modes_become_rgb(image, pixel):
    out = to_rgb(image)
    assert out.mode == "RGB" and out.size == image.size
    assert out.getpixel((0, 0)) == pixel


def test_palette_with_transparency_is_composited_on_white():
    p = Image.new("P", (2, 1))
    p.putpalette([0, 0, 0, 200, 10, 10] + [0] * 762)
    p.putdata([0, 1])
    p.info["transparency"] = 0
    out = to_rgb(p)
    assert out.getpixel((0, 0)) == (255, 255, 255) and out.getpixel((1, 0)) == (200, 10, 10)


def test_sixteen_bit_is_rescaled_not_clipped():
    arr = np.array([[0, 1000, 4000]], dtype=np.uint16)
    out = to_rgb(Image.fromarray(arr))  # mode I;16
    values = [out.getpixel((x, 0))[0] for x in range(3)]
    assert values == [0, 64, 255]


def test_zero_size_is_rejected():
    with pytest.raises(ValidationError, match="zero size"):
        to_rgb(Image.new("RGB", (0, 5)))


def test_bytes_records_and_relative_paths(tmp_path):
    src = Image.new("RGB", (3, 2), (9, 8, 7))
    data = _png_bytes(src)
    (tmp_path / "a.png").write_bytes(data)
    for value in (data, {"bytes": data, "path": None}, {"bytes": None, "path": "a.png"}, "a.png"):
        assert load_rgb(value, tmp_path).getpixel((2, 1)) == (9, 8, 7)


def test_missing_and_unreadable_files_are_clear_errors(tmp_path):
    with pytest.raises(ValidationError, match="not found"):
        open_image("nope.png", tmp_path)
    (tmp_path / "junk.png").write_bytes(b"junk")
    with pytest.raises(ValidationError, match="not a readable image"):
        open_image("junk.png", tmp_path)
    with pytest.raises(ValidationError, match="not a readable image"):
        open_image(b"junk")

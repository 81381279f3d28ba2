"""Turning whatever a dataset stores as an image into one 3-channel RGB PIL image.

Datasets hold images as decoded PIL objects, `{"bytes", "path"}` records, raw bytes or file
names, in every PIL mode (CMYK JPEGs, greyscale scans, RGBA/palette PNGs with transparency,
16-bit TIFFs). Processors of vision-language models expect RGB; converting here, once, keeps
a greyscale document page or a transparent chart from silently becoming a 1- or 4-channel
tensor somewhere downstream.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from cliffscope.errors import ValidationError

_WHITE = (255, 255, 255)


def open_image(value: Any, base_dir: str | os.PathLike | None = None) -> Image.Image:
    """A PIL image from a PIL object, a `{bytes, path}` record, bytes, or a file name."""
    if isinstance(value, Image.Image):
        return value
    if isinstance(value, dict):
        if value.get("bytes"):
            return open_image(bytes(value["bytes"]))
        if value.get("path"):
            return open_image(str(value["path"]), base_dir)
        raise ValidationError("image record has neither bytes nor path")
    if isinstance(value, (bytes, bytearray, memoryview)):
        try:
            return Image.open(io.BytesIO(bytes(value)))
        except (OSError, Image.DecompressionBombError) as exc:  # bomb: over ~179 Mpx
            raise ValidationError(f"image bytes are not a readable image ({exc})") from None
    if isinstance(value, (str, os.PathLike)):
        path = Path(os.path.expanduser(value))  # pathlib's raises on `~unknown-user`
        if not path.is_absolute() and base_dir is not None:
            path = Path(base_dir) / path
        if not path.is_file():
            raise ValidationError(
                f"image file not found: {path}",
                hint="set image_dir (or --set image_dir=PATH) to the folder the names are relative to",
            )
        try:
            return Image.open(path)
        except (OSError, Image.DecompressionBombError) as exc:
            raise ValidationError(f"not a readable image: {path} ({exc})") from None
    raise ValidationError(f"unsupported image value of type {type(value).__name__}")


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB copy of `image`; transparency is composited on white, 16-bit/float is rescaled."""
    try:
        image.load()
    except OSError as exc:
        raise ValidationError(f"image could not be decoded ({exc})") from None
    if image.width == 0 or image.height == 0:
        raise ValidationError(f"image has zero size ({image.width}x{image.height})")
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        return _high_depth_to_rgb(image)
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        mode = image.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, _WHITE + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV


def _high_depth_to_rgb(image: Image.Image) -> Image.Image:
    """Min-max scale a 16-bit or float single-channel image to 8-bit grey, then RGB."""
    arr = np.asarray(image, dtype=np.float64)
    lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
    scaled = np.zeros_like(arr) if hi <= lo else (arr - lo) / (hi - lo) * 255.0
    grey = Image.fromarray(np.nan_to_num(scaled).round().astype(np.uint8))  # 2-D uint8 -> "L"
    return grey.convert("RGB")


def load_rgb(value: Any, base_dir: str | os.PathLike | None = None) -> Image.Image:
    """`open_image` then `to_rgb`: the one call loaders make."""
    return to_rgb(open_image(value, base_dir))

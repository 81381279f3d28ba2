"""Which part of the original image a processor actually shows the model.

Grids are drawn over the ORIGINAL image, so every adapter needs the inverse of its processor's
geometry: pad-to-square, shortest-edge resize and centre crop (CLIP / LLaVA-1.5) or a plain
resize of the whole image (LLaVA-NeXT base view, Qwen2-VL). Rounding to whole pixels inside
the processor is ignored: boxes are exact up to a pixel.
"""

from __future__ import annotations

from typing import Any

Box = tuple[float, float, float, float]


def full_box(width: int, height: int) -> Box:
    """The processor shows the whole image (possibly squashed or resized)."""
    return (0.0, 0.0, float(width), float(height))


def _get(size: Any, key: str) -> int | None:
    if size is None:
        return None
    if isinstance(size, dict):
        return size.get(key)
    return getattr(size, key, None)


def clip_view_box(image_processor: Any, width: int, height: int) -> Box:
    """Box of the original image covered by a CLIP-style view (pad?, resize, centre crop).

    With `do_pad` (LlavaImageProcessor) the image is first centred on a square canvas, so the
    box may extend past the image: the grid then also covers the padding, as the model does.
    """
    w, h = float(width), float(height)
    x_off = y_off = 0.0
    if getattr(image_processor, "do_pad", False):
        side = max(w, h)
        x_off, y_off = (side - w) / 2, (side - h) / 2
        w = h = side
    size = getattr(image_processor, "size", None)
    rw, rh = w, h
    if getattr(image_processor, "do_resize", True) and size is not None:
        short_edge = _get(size, "shortest_edge")
        if short_edge:
            scale = short_edge / min(w, h)
            rw, rh = w * scale, h * scale
        elif _get(size, "height") and _get(size, "width"):
            rw, rh = float(_get(size, "width")), float(_get(size, "height"))
    sx, sy = rw / w, rh / h
    cx0, cy0, cx1, cy1 = 0.0, 0.0, rw, rh
    crop = getattr(image_processor, "crop_size", None)
    if getattr(image_processor, "do_center_crop", False) and crop is not None:
        cw, ch = float(_get(crop, "width")), float(_get(crop, "height"))
        cx0, cy0 = (rw - cw) / 2, (rh - ch) / 2
        cx1, cy1 = cx0 + cw, cy0 + ch
    return (cx0 / sx - x_off, cy0 / sy - y_off, cx1 / sx - x_off, cy1 / sy - y_off)


def square_grid(n_tokens: int) -> tuple[int, int]:
    """(side, leading extras) for a square patch grid optionally preceded by CLS-like tokens."""
    side = int(n_tokens**0.5)
    while (side + 1) ** 2 <= n_tokens:
        side += 1
    return side, n_tokens - side * side

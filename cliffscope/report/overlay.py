"""Attention / CAM maps blended over the sample's image: one picture for every front end.

The dashboard draws `blend` at whatever resolution the terminal gives it (half-block cells,
or real pixels over Kitty graphics / Sixel) and the exported report saves the same blend as
PNG (`band_png`), so a map looks the same everywhere.

Every image grid is drawn over its own pixel box. Grids whose boxes overlap (LLaVA-NeXT's
base view and its anyres tiles both cover the whole image; Qwen2-VL's frames) get a panel
each, side by side; grids with disjoint boxes share one panel. Image area that no grid of a
panel covers (the sides a CLIP centre crop never saw) is dimmed.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from cliffscope.report.mapfile import VIEWS, LoadedMap, MapGrid
from cliffscope.store.atomic import atomic_write_bytes

# inferno, 6 stops: dark = low, yellow = high (readable on dark and light themes)
_STOPS = np.array(
    [[0, 0, 4], [40, 11, 84], [101, 21, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]],
    dtype=np.float32,
)
ALPHA = 0.6  # weight of the map over the image
DIM = 0.45  # brightness of image area outside every grid box of a panel
NO_IMAGE_GREY = 96.0
VIEW_NAMES = {"attention": "attention", "cam": "LLaVA-CAM"}


def colormap(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] -> RGB float array (..., 3)."""
    v = np.clip(values, 0.0, 1.0) * (len(_STOPS) - 1)
    lo = np.floor(v).astype(int).clip(0, len(_STOPS) - 2)
    frac = (v - lo)[..., None]
    return _STOPS[lo] * (1 - frac) + _STOPS[lo + 1] * frac


def _overlaps(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


def panel_groups(grids: list[MapGrid]) -> list[list[int]]:
    """Grid indices per panel: a grid joins the first panel none of whose boxes it overlaps."""
    panels: list[list[int]] = []
    for i, grid in enumerate(grids):
        for panel in panels:
            if not any(_overlaps(grid.box, grids[j].box) for j in panel):
                panel.append(i)
                break
        else:
            panels.append([i])
    return panels


def peak(values: list[np.ndarray]) -> float:
    """The value drawn brightest: maps are scaled by their largest value over all grids."""
    return max((float(v.max()) for v in values if v.size), default=0.0)


GAP = 0.05  # space between panels, as a share of a panel's width


def layout(image_size: tuple[int, int], n_panels: int, width: int, height: int) -> tuple:
    """(panel width, panel height, gap) in output pixels, fitting `width` x `height`."""
    iw, ih = max(1, image_size[0]), max(1, image_size[1])
    n = max(1, n_panels)
    scale = min(width / (iw * (n + (n - 1) * GAP)), height / ih)
    ow, oh = max(1, int(iw * scale + 1e-6)), max(1, int(ih * scale + 1e-6))
    gap = 0 if n == 1 else max(1, round(ow * GAP))
    while ow > 1 and n * ow + (n - 1) * gap > width:
        ow -= 1
    return ow, oh, gap


def _nearest(cells: np.ndarray, width: int, height: int) -> np.ndarray:
    """(rows, cols, 3) token colours enlarged to (height, width, 3), each token a block."""
    rows, cols = cells.shape[:2]
    ys = np.minimum(((np.arange(height) + 0.5) * rows / height).astype(int), rows - 1)
    xs = np.minimum(((np.arange(width) + 0.5) * cols / width).astype(int), cols - 1)
    return cells[ys][:, xs]


def resized(image: Any, width: int, height: int) -> np.ndarray:
    """The image as an RGB float array of `width` x `height`: bilinear, except blown up
    three times or more (a 64-pixel test scene), where nearest keeps the pixels sharp."""
    from PIL import Image

    resample = Image.NEAREST if width >= 3 * image.size[0] else Image.BILINEAR
    return np.asarray(image.convert("RGB").resize((width, height), resample), dtype=np.float32)


def blend(
    image: Any | None,
    image_size: tuple[int, int],
    grids: list[MapGrid],
    values: list[np.ndarray],
    width: int,
    height: int,
    alpha: float = ALPHA,
) -> np.ndarray:
    """RGB uint8 array (h, w, 3) no larger than `width` x `height` pixels, aspect kept."""

    panels = panel_groups(grids) or [[]]
    ow, oh, gap = layout(image_size, len(panels), width, height)
    if image is not None:
        base = resized(image, ow, oh)
    else:
        base = np.full((oh, ow, 3), NO_IMAGE_GREY, dtype=np.float32)
    top = peak(values)
    sx, sy = ow / max(1, image_size[0]), oh / max(1, image_size[1])
    out = np.zeros((oh, len(panels) * ow + (len(panels) - 1) * gap, 3), dtype=np.float32)
    for p, members in enumerate(panels):
        panel = base.copy()
        covered = np.zeros((oh, ow), dtype=bool)
        for g in members:
            x0, y0 = max(0, round(grids[g].box[0] * sx)), max(0, round(grids[g].box[1] * sy))
            x1 = min(ow, max(round(grids[g].box[2] * sx), x0 + 1))
            y1 = min(oh, max(round(grids[g].box[3] * sy), y0 + 1))
            if x1 <= x0 or y1 <= y0 or g >= len(values):
                continue
            norm = values[g] / top if top > 0 else np.zeros_like(values[g])
            heat = _nearest(colormap(norm), x1 - x0, y1 - y0)  # colour tokens, then enlarge
            panel[y0:y1, x0:x1] = (1 - alpha) * base[y0:y1, x0:x1] + alpha * heat
            covered[y0:y1, x0:x1] = True
        if members:
            panel[~covered] *= DIM
        x = p * (ow + gap)
        out[:, x : x + ow] = panel
    return out.clip(0, 255).astype(np.uint8)


def layer_bands(layers: list[int], n: int = 4) -> list[list[int]]:
    """Sorted `layers` cut into up to `n` contiguous bands (shallow to deep)."""
    ordered = sorted(set(layers))
    if not ordered:
        return []
    return [list(map(int, b)) for b in np.array_split(ordered, min(n, len(ordered)))]


def band_label(band: list[int]) -> str:
    return f"layer {band[0]}" if len(band) == 1 else f"layers {band[0]}–{band[-1]}"


# ---- the exported PNG --------------------------------------------------------------------------

PANEL_PX = 224  # height of one exported panel
_PAD = 8
_TEXT = 14
_BAR = 10


def _colour_bar(width: int) -> np.ndarray:
    ramp = colormap(np.linspace(0.0, 1.0, max(2, width)))
    return np.repeat(ramp[None, :, :], _BAR, axis=0).astype(np.uint8)


def band_png(loaded: LoadedMap, band: list[int], title: str = "") -> bytes:
    """PNG of one sample's maps averaged over a band of layers: a row per view (attention,
    LLaVA-CAM), the same blend as the dashboard, with a colour scale from 0 to the peak."""
    from PIL import Image, ImageDraw

    n = len(panel_groups(loaded.grids)) or 1
    rows = []
    for view in VIEWS:
        have = [layer for layer in band if layer in (loaded.layers.get(view) or {})]
        if have:
            values = loaded.mean_values(view, have)
            pixels = blend(loaded.image, loaded.image_size, loaded.grids, values, 1 << 14, PANEL_PX)
            rows.append((view, have, pixels, peak(values)))
    if not rows:
        raise ValueError(f"no maps in {band_label(band)}")
    width = max(max(r[2].shape[1] for r in rows), 320) + 2 * _PAD
    row_h = _TEXT + PANEL_PX + 4 + _BAR + _TEXT
    height = _PAD + (_TEXT if title else 0) + len(rows) * (row_h + _PAD)
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    y = _PAD
    if title:
        draw.text((_PAD, y), title, fill=(0, 0, 0))
        y += _TEXT
    labels = " | ".join(
        "+".join(loaded.grids[g].label or "grid" for g in p) for p in panel_groups(loaded.grids)
    )
    for view, have, pixels, top in rows:
        mean = "" if len(have) == 1 else " (mean)"
        caption = f"{VIEW_NAMES[view]}, {band_label(have)}{mean}" + (
            f"   [{labels}]" if n > 1 else ""
        )
        draw.text((_PAD, y), caption, fill=(0, 0, 0))
        y += _TEXT
        canvas.paste(Image.fromarray(pixels), (_PAD, y))
        y += pixels.shape[0] + 4
        bar_w = min(pixels.shape[1], 240)
        canvas.paste(Image.fromarray(_colour_bar(bar_w)), (_PAD, y))
        y += _BAR
        draw.text((_PAD, y), "0", fill=(0, 0, 0))
        draw.text((_PAD + bar_w - 48, y), f"{top:.3g}", fill=(0, 0, 0))
        y += _TEXT + _PAD
    buf = io.BytesIO()
    canvas.save(buf, format="PNG")
    return buf.getvalue()


def band_figure(loaded: LoadedMap, band: list[int], path: Path, title: str = "") -> Path:
    """`band_png` written atomically to `path`."""
    atomic_write_bytes(path, band_png(loaded, band, title))
    return path

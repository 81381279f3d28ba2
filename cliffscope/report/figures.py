"""PNG figures for reports (matplotlib, imported inside the functions).

Figures are built on a bare `matplotlib.figure.Figure` with the Agg canvas: no pyplot, no global
state, so the dashboard may export from a worker thread. Sizes are fixed (`*_SIZE` in inches at
`DPI`) and saved without tight bounding boxes, so a PNG's pixel size is known in advance.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cliffscope.report import tables
from cliffscope.store.atomic import atomic_write_bytes
from cliffscope.vocab import group_colour, interval_label, matplotlib_colour, result_alpha

DPI = 100
FLOW_SIZE = (10.0, 6.0)
SWEEP_SIZE = (9.0, 6.0)
MAP_PANEL = 1.8  # inches per map panel (square)
BASELINE = "gray"
OWN_CLIFF = "black"

#: another kind's cliff estimate to mark: (layer, name, vocabulary colour)
Other = tuple[int, str, str]


def pixel_size(size: tuple[float, float]) -> tuple[int, int]:
    """(width, height) in pixels of a figure of `size` inches saved at `DPI`."""
    return round(size[0] * DPI), round(size[1] * DPI)


def maps_size(n_layers: int) -> tuple[float, float]:
    """An image column plus one column per layer; rows: attention, CAM; room for titles."""
    return (MAP_PANEL * (n_layers + 1), MAP_PANEL * 2 + 0.6)


def new_figure(size: tuple[float, float]):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def save(fig: Any, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    atomic_write_bytes(path, buf.getvalue())
    return path


def _xs(values: Sequence[float | None]) -> tuple[np.ndarray, np.ndarray]:
    y = np.array([np.nan if v is None else v for v in values], dtype=float)
    return np.arange(len(y)), y


def _mark_cliff(ax: Any, layer: Any, colour: str, label: str, style: str = "--") -> None:
    if isinstance(layer, int) and not isinstance(layer, bool):
        ax.axvline(layer, color=colour, linestyle=style, linewidth=1.4, label=label)


def _mark_others(ax: Any, others: Sequence[Other]) -> None:
    for layer, name, colour in others:
        _mark_cliff(ax, layer, matplotlib_colour(colour), name, ":")


def flow_figure(
    result: dict[str, Any], path: Path, others: Sequence[Other] = (), measure: str = "mass"
) -> Path:
    """One panel per token group: mean flow with its interval band, the even-spread level,
    and the cliff (its bootstrap band and line; the other kinds' estimates dotted)."""
    names = tables.groups(result) or list(tables.DEFAULT_GROUPS)
    fig = new_figure(FLOW_SIZE)
    cols = 2 if len(names) > 1 else 1
    rows = (len(names) + cols - 1) // cols
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True)
    cliff = result.get("cliff") if isinstance(result.get("cliff"), dict) else {}
    spread = tables.even_spread(result)
    for index, ax in enumerate(axes.ravel()):
        if index >= len(names):
            ax.set_visible(False)
            continue
        group = names[index]
        colour = group_colour(group, "matplotlib")
        series = tables.flow_series(result, measure, group)
        x, mean = _xs(series["mean"])
        _, lo = _xs(series["lo"])
        _, hi = _xs(series["hi"])
        level = interval_label(result_alpha(result))
        ax.fill_between(x, lo, hi, color=colour, alpha=0.2, linewidth=0, label=f"{level} interval")
        ax.plot(x, mean, color=colour, marker="o", markersize=3, label=f"{group} {measure}")
        if spread.get(group) is not None and measure == "mass":
            ax.axhline(spread[group], color="gray", linestyle=":", label="even spread")
        lo_c, hi_c = cliff.get("lo"), cliff.get("hi")
        if isinstance(lo_c, int) and isinstance(hi_c, int) and hi_c > lo_c:
            ax.axvspan(lo_c, hi_c, color="black", alpha=0.06)
        _mark_cliff(ax, cliff.get("layer"), OWN_CLIFF, "flow cliff")
        _mark_others(ax, others)
        ax.set_title(group, fontsize=10)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        if index == 0:
            ax.legend(fontsize=7, loc="best")
    for ax in axes[-1]:
        ax.set_xlabel("layer")
    for ax in axes[:, 0]:
        ax.set_ylabel(f"attention {measure}")
    fig.suptitle(
        f"attention flow per group (query {result.get('query', '?')}, heads "
        f"{result.get('heads', '?')}, n = {result.get('n_samples', '?')})",
        fontsize=11,
    )
    fig.tight_layout()
    return save(fig, path)


def sweep_figure(result: dict[str, Any], path: Path, others: Sequence[Other] = ()) -> Path:
    """Score against k with the baseline band, the sweep's cliff and the other kinds'
    estimates; below, compute saved."""
    rows = tables.sweep_rows(result)
    base = tables.baseline(result) or {}
    fig = new_figure(SWEEP_SIZE)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1.2]})
    k = np.array([r["k"] for r in rows], dtype=float)
    score = np.array([np.nan if r["score"] is None else r["score"] for r in rows], dtype=float)
    if base.get("score") is not None:
        top.axhline(base["score"], color=BASELINE, label="baseline (no truncation)")
        if base.get("lo") is not None and base.get("hi") is not None:
            top.axhspan(base["lo"], base["hi"], color=BASELINE, alpha=0.15)
        lo = [base["score"] + r["lo"] if r["lo"] is not None else np.nan for r in rows]
        hi = [base["score"] + r["hi"] if r["hi"] is not None else np.nan for r in rows]
        if rows:
            top.fill_between(k, lo, hi, color="tab:blue", alpha=0.15, linewidth=0)
    top.plot(k, score, color="tab:blue", marker="o", markersize=4, label="truncated at k")
    cliff = result.get("cliff") if isinstance(result.get("cliff"), dict) else {}
    _mark_cliff(top, cliff.get("layer"), OWN_CLIFF, "sweep cliff")
    _mark_others(top, others)
    top.set_ylabel(str(result.get("metric", "score")))
    top.grid(alpha=0.3)
    top.legend(fontsize=8, loc="lower right")
    top.set_title(
        f"truncation sweep (mode {result.get('mode', '?')}, n = {result.get('n_samples', '?')})",
        fontsize=11,
    )
    for key, colour, label in (
        ("flops_saved", "tab:purple", "FLOPs saved"),
        ("kv_saved", "tab:brown", "KV cache saved"),
    ):
        values = [np.nan if r[key] is None else r[key] for r in rows]
        bottom.plot(k, values, color=colour, marker=".", label=label)
    bottom.set_ylabel("fraction")
    bottom.set_xlabel("k (image tokens removed from layer k on)")
    bottom.grid(alpha=0.3)
    bottom.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return save(fig, path)


# ---- attention / CAM overlays -----------------------------------------------------------------


def grid_arrays(map_data: dict[str, Any], kind: str, layer: int) -> list[np.ndarray] | None:
    """The per-grid 2-D arrays of one map layer; None when absent or the wrong size.

    Values may be one flat list over all grids in order, or one list per grid.
    """
    grids = map_data.get("grids") or []
    values = (map_data.get(kind) or {}).get(str(layer))
    if not grids or not isinstance(values, list):
        return None
    shapes = [(int(g.get("rows", 0)), int(g.get("cols", 0))) for g in grids]
    if values and all(isinstance(v, list) for v in values) and len(values) == len(grids):
        parts = values
    else:
        sizes = np.cumsum([r * c for r, c in shapes])
        if len(values) != (sizes[-1] if len(sizes) else 0):
            return None
        parts = np.split(np.asarray(values, dtype=float), sizes[:-1])
    try:
        return [np.asarray(p, dtype=float).reshape(s) for p, s in zip(parts, shapes, strict=True)]
    except ValueError:
        return None


def map_layers(map_data: dict[str, Any]) -> list[int]:
    keys = set((map_data.get("attention") or {}).keys()) | set((map_data.get("cam") or {}).keys())
    return sorted(int(k) for k in keys if str(k).lstrip("-").isdigit())


def choose_layers(
    available: Sequence[int], wanted: Sequence[int] | None, cliff: Any = None, most: int = 6
) -> list[int]:
    """The layers to draw: the requested ones that exist, else up to `most` spread evenly
    over the available layers, always including the cliff layer when there is one."""
    if wanted:
        return [layer for layer in wanted if layer in set(available)]
    layers = list(available)
    if len(layers) <= most:
        return layers
    picks = {layers[round(i * (len(layers) - 1) / (most - 1))] for i in range(most)}
    middle = picks - {layers[0], layers[-1]}
    if isinstance(cliff, int) and cliff in layers and cliff not in picks and middle:
        picks.discard(min(middle, key=lambda x: abs(x - cliff)))
        picks.add(cliff)
    return sorted(picks)


def _load_image(path: Path | None, boxes: list[list[float]]) -> np.ndarray:
    if path is not None and path.is_file():
        from PIL import Image

        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"))
    width = int(max((b[2] for b in boxes), default=32))
    height = int(max((b[3] for b in boxes), default=32))
    return np.full((height, width, 3), 255, dtype=np.uint8)


def maps_figure(
    map_data: dict[str, Any],
    image_path: Path | None,
    layers: Sequence[int],
    path: Path,
    title: str = "",
) -> Path:
    """Like the paper's per-layer figure: the image, then one column per layer; top row the
    attention map, bottom row LLaVA-CAM, each upsampled over its grid's box on the image."""
    grids = map_data.get("grids") or []
    boxes = [list(map(float, g.get("box", [0, 0, 1, 1]))) for g in grids]
    image = _load_image(image_path, boxes)
    height, width = image.shape[:2]
    fig = new_figure(maps_size(len(layers)))
    axes = fig.subplots(2, len(layers) + 1, squeeze=False)
    for row, (kind, name) in enumerate((("attention", "attention"), ("cam", "LLaVA-CAM"))):
        axes[row, 0].imshow(image)
        axes[row, 0].set_title("image" if row == 0 else "", fontsize=8)
        axes[row, 0].set_ylabel(name, fontsize=9)
        for col, layer in enumerate(layers, start=1):
            ax = axes[row, col]
            ax.imshow(image)
            arrays = grid_arrays(map_data, kind, layer)
            if arrays is None:
                ax.text(0.5, 0.5, "n/a", transform=ax.transAxes, ha="center", va="center")
            else:
                low = min(float(a.min()) for a in arrays)
                span = max(float(a.max()) for a in arrays) - low or 1.0
                for arr, (x0, y0, x1, y1) in zip(arrays, boxes, strict=True):
                    ax.imshow(
                        (arr - low) / span,
                        extent=(x0, x1, y1, y0),
                        cmap="jet",
                        alpha=0.5,
                        vmin=0.0,
                        vmax=1.0,
                        interpolation="bilinear",
                    )
            ax.set_xlim(0, width)
            ax.set_ylim(height, 0)
            if row == 0:
                ax.set_title(f"layer {layer}", fontsize=8)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=9, parse_math=False)
    fig.tight_layout()
    return save(fig, path)

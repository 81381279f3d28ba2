"""`maps/<id>.json` (attention and LLaVA-CAM maps of one sample) and `images/<id>.png`.

The one writer (the analysis worker) and the one reader (the dashboard's Maps tab, the
exported figures and overlays) of map files, so all agree on what a map file means. Paths in
result.json are data, not trusted: a map or image path that leaves the run directory is
refused (`inside`), and sample ids become file names only through `file_name`.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

VIEWS = ("attention", "cam")


@dataclass(frozen=True)
class MapGrid:
    """One image grid of a map file: its token layout and the image box it covers."""

    rows: int
    cols: int
    box: tuple[float, float, float, float]
    label: str = ""


def inside(root: Path, rel: Any) -> Path | None:
    """`root / rel` if it stays inside root, else None."""
    if not isinstance(rel, str) or not rel:
        return None
    path = (root / rel).resolve()
    return path if path.is_relative_to(root.resolve()) else None


def file_name(sample_id: str) -> str:
    """Sample ids come from datasets; keep file names to a safe alphabet (and apart)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in sample_id).lstrip(".")[:80]
    if safe != sample_id:  # two ids may clean to the same name: keep them apart
        safe = f"{safe}-{hashlib.sha1(sample_id.encode()).hexdigest()[:8]}"
    return safe


def write_map(run_path: Path, sample_id: str, doc: dict[str, Any], image: Any) -> dict[str, str]:
    """Write one sample's map document and its image (PIL) atomically; returns the entry
    (`{"file", "image"}`, relative to the run dir) its sample line and result.json carry."""
    from cliffscope.store.atomic import atomic_write_bytes, atomic_write_text, json_safe

    name = file_name(sample_id)
    text = json.dumps(json_safe(doc), separators=(",", ":"), allow_nan=False)
    atomic_write_text(run_path / "maps" / f"{name}.json", text + "\n")
    png = io.BytesIO()
    image.convert("RGB").save(png, format="PNG")
    atomic_write_bytes(run_path / "images" / f"{name}.png", png.getvalue())
    return {"file": f"maps/{name}.json", "image": f"images/{name}.png"}


def read_map_data(run_path: Path, entry: dict[str, Any]) -> dict[str, Any]:
    """The raw map document of a result.json entry (ValueError when outside the run dir,
    not JSON or not an object; OSError when unreadable)."""
    map_file = inside(run_path, entry.get("file"))
    if map_file is None:
        raise ValueError(f"map path {entry.get('file')!r} is not inside the run directory")
    data = json.loads(map_file.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError("map file is not a JSON object")
    return data


def split_values(grids: list[MapGrid], values: list) -> list[np.ndarray]:
    """A map file's per-layer values as one (rows, cols) array per grid: either one list per
    grid (what the worker writes) or one flat list cut in grid order."""
    if values and all(isinstance(v, list) for v in values):
        if len(values) != len(grids):
            raise ValueError(f"map has {len(values)} grids of values for {len(grids)} grids")
        return [
            np.asarray(v, dtype=np.float32).reshape(g.rows, g.cols)
            for g, v in zip(grids, values, strict=True)
        ]
    out, start = [], 0
    for grid in grids:
        n = grid.rows * grid.cols
        chunk = np.asarray(values[start : start + n], dtype=np.float32)
        if chunk.size != n:
            raise ValueError(f"map has {len(values)} values, grids need more")
        out.append(chunk.reshape(grid.rows, grid.cols))
        start += n
    return out


@dataclass
class LoadedMap:
    """One sample's maps, ready to draw: the image, its grids and the values per layer."""

    image: Any | None  # PIL RGB image, or None when the file is missing
    image_size: tuple[int, int]  # the pixel space the grid boxes are in
    grids: list[MapGrid]
    layers: dict[str, dict[int, list]]  # view -> layer -> values (per grid, or flat)
    about: dict[str, Any]  # question, prediction, references when the file has them

    def layer_list(self, view: str) -> list[int]:
        return sorted(self.layers.get(view) or {})

    def values(self, view: str, layer: int) -> list[np.ndarray]:
        """The per-grid arrays of one layer (ValueError if they do not fit the grids)."""
        return split_values(self.grids, self.layers[view][layer])

    def mean_values(self, view: str, layers: list[int]) -> list[np.ndarray]:
        """The per-grid mean over `layers` (a band of layers)."""
        stacks = [self.values(view, layer) for layer in layers]
        return [np.mean([s[g] for s in stacks], axis=0) for g in range(len(self.grids))]


def load_map(run_path: Path, entry: dict[str, Any]) -> LoadedMap:
    """Read one map entry of result.json (`{"file", "image"}`, relative to the run dir)."""
    from PIL import Image

    data = read_map_data(run_path, entry)
    grids = [
        MapGrid(
            int(g["rows"]),
            int(g["cols"]),
            tuple(float(c) for c in g["box"]),
            str(g.get("label", "")),
        )
        for g in data.get("grids", [])
    ]
    image, size = None, (1, 1)
    image_file = inside(run_path, entry.get("image"))
    if image_file is not None:
        try:
            with Image.open(image_file) as img:
                image = img.convert("RGB")
            size = image.size
        except OSError:
            image = None
    declared = data.get("image_size")
    if isinstance(declared, list) and len(declared) == 2:
        size = (int(declared[0]), int(declared[1]))  # the pixel space the boxes are in
    elif image is None and grids:
        size = (int(max(g.box[2] for g in grids)), int(max(g.box[3] for g in grids)))
    layers = {
        view: {int(k): v for k, v in (data.get(view) or {}).items() if str(k).lstrip("-").isdigit()}
        for view in VIEWS
    }
    about = {k: data[k] for k in ("question", "prediction", "references") if k in data}
    return LoadedMap(image, size, grids, layers, about)

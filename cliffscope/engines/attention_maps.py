"""Per-layer maps over the image: attention (query -> image tokens) and CAM, laid on the grid.

Both engines produce values per sequence position ([L, S]); the adapter's `ImageGrid`s say
which positions form which grid, row-major, and which box of the original image they cover.
This module only does that layout and writes the `maps/<id>.json` document (schema in
docs/architecture.md): `attention` and `cam` map a layer number (as a string) to one list of
rows*cols floats per grid, in the order of `grids`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from cliffscope.models.base import ImageGrid
from cliffscope.vocab import stored


def on_grids(values: np.ndarray, grids: Sequence[ImageGrid]) -> list[list[float]]:
    """One position-indexed vector ([S]) -> one row-major list per grid."""
    return [[stored(v) for v in values[grid.positions]] for grid in grids]


def layer_maps(per_layer: np.ndarray, grids: Sequence[ImageGrid]) -> dict[str, list[list[float]]]:
    """[L, S] -> {"0": [grid values...], "1": ...}."""
    return {str(layer): on_grids(per_layer[layer], grids) for layer in range(per_layer.shape[0])}


def map_document(
    sample_id: str,
    grids: Sequence[ImageGrid],
    attention: np.ndarray | None,
    cam: np.ndarray | None,
    cam_grids: Sequence[ImageGrid] | None = None,
    **meta: Any,
) -> dict[str, Any]:
    """The `maps/<id>.json` object.

    `attention` is the head-reduced, query-averaged attention probability of each key
    ([L, S], raw: values on a grid sum to the layer's image mass). `cam` ([L, S]) is
    normalised to [0, 1] per layer. `cam_grids` are needed when CAM ran on a differently
    padded batch than the capture (positions shift with left padding); the grid shapes and
    boxes are the same.
    """
    doc: dict[str, Any] = {"id": sample_id, "grids": [g.to_json() for g in grids], **meta}
    doc["attention"] = layer_maps(attention, grids) if attention is not None else {}
    doc["cam"] = layer_maps(cam, cam_grids or grids) if cam is not None else {}
    return doc

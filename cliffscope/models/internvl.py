"""InternVL (transformers' `InternVLForConditionalGeneration`, InternVL3-hf checkpoints).

The image processor picks the tile grid (cols x rows) whose aspect ratio is closest to the
image's (`get_optimal_tiled_canvas`, min..max tiles), resizes the whole image to it and cuts it
into tiles, row-major, then adds a thumbnail of the whole image when there is more than one
tile. Each view becomes `image_seq_length` tokens after the pixel shuffle (a square grid,
row-major: token (i, j) covers patches 2i..2i+1 x 2j..2j+1). The run is `<img>` +
`<IMG_CONTEXT>` x views x image_seq_length + `</img>`; the markers are text. Tile (r, c)
covers the matching slice of the original image (the resize stretches the whole image).
"""

from __future__ import annotations

import math
from typing import Any

from cliffscope.errors import CliffscopeError
from cliffscope.models.base import ImageGrid, ModelAdapter, PreparedBatch
from cliffscope.models.geometry import full_box


def _size(size: Any) -> tuple[int, int]:
    if isinstance(size, dict):
        return int(size["height"]), int(size["width"])
    return int(size.height), int(size.width)


class InternVLAdapter(ModelAdapter):
    family = "internvl"
    model_types = ("internvl",)
    description = "InternVL3-hf (tiles + thumbnail, pixel shuffle; Qwen2 / Llama decoder)"

    def tile_grid(self, width: int, height: int) -> tuple[int, int]:
        """(cols, rows) of tiles the image processor cuts an image of this size into."""
        from transformers.models.got_ocr2.image_processing_got_ocr2 import (
            get_optimal_tiled_canvas,
        )

        ip = self.processor.image_processor
        if not getattr(ip, "crop_to_patches", False) or int(ip.max_patches) <= 1:
            return 1, 1
        tile = _size(ip.size)
        return get_optimal_tiled_canvas(
            (height, width), tile, int(ip.min_patches), int(ip.max_patches)
        )

    def image_grids(self, batch: PreparedBatch, row: int) -> list[ImageGrid]:
        positions = list(batch.groups[row].image)
        width, height = batch.image_sizes[row]
        cols, rows = self.tile_grid(width, height)
        views = cols * rows + (1 if cols * rows > 1 else 0)
        per_view = len(positions) // views if views else 0
        side = math.isqrt(per_view)
        if views * per_view != len(positions) or side * side != per_view:
            raise CliffscopeError(
                f"internvl image run of {len(positions)} tokens does not split into {views} "
                "square views",
                hint="the processor's min/max tiles or image_seq_length differ from the model's",
            )
        grids = []
        for view in range(views):
            chunk = positions[view * per_view : (view + 1) * per_view]
            if view < cols * rows:
                r, c = divmod(view, cols)
                box = (c * width / cols, r * height / rows, (c + 1) * width / cols,
                       (r + 1) * height / rows)  # fmt: skip
                label = f"tile {r},{c}" if views > 1 else "base"
            else:
                box, label = full_box(width, height), "thumbnail"
            grids.append(ImageGrid(positions=chunk, rows=side, cols=side, box=box, label=label))
        return grids

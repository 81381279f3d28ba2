"""LLaVA-NeXT (`LlavaNextForConditionalGeneration`): base view + anyres tiles + newlines.

Token order inside the image run (transformers' `LlavaNextModel.pack_image_features`):

1. the base view: the whole image squashed to one tile, `side x side` tokens row-major
   (`side = vision image_size // patch_size`, 24 for the 336-px CLIP tower);
2. the anyres view: the best-fit pinpoint resolution cut into `nph x npw` tiles, stitched into
   one `(nph*side) x (npw*side)` feature map, with the rows/columns that only covered the
   letterbox padding removed (`unpad_image`), written row by row, each row followed by one
   `image_newline` token.

All of these carry `image_token_id`. `image_grids` returns two grids, both covering the whole
original image: "base" (side x side) and "anyres" (the stitched, unpadded tiles, newline
tokens excluded). `newline_positions` gives the newline tokens.
"""

from __future__ import annotations

from typing import Any

from cliffscope.errors import CliffscopeError
from cliffscope.models.base import ImageGrid, ModelAdapter, PreparedBatch
from cliffscope.models.geometry import full_box


class LlavaNextAdapter(ModelAdapter):
    family = "llava-next"
    model_types = ("llava_next",)
    description = "LLaVA-NeXT / 1.6 (CLIP; base view + anyres tiles + newlines)"

    @classmethod
    def model_class(cls) -> Any:
        from transformers import LlavaNextForConditionalGeneration

        return LlavaNextForConditionalGeneration

    def anyres_shape(self, width: int, height: int) -> tuple[int, int, int]:
        """(side, rows, cols): base-view side and the unpadded anyres grid for an image size."""
        from transformers.image_processing_utils import select_best_resolution

        cfg = self.model.config
        tile = int(cfg.vision_config.image_size)
        side = tile // int(cfg.vision_config.patch_size)
        best_h, best_w = select_best_resolution([height, width], cfg.image_grid_pinpoints)
        rows, cols = (best_h // tile) * side, (best_w // tile) * side
        # Same arithmetic as transformers' `unpad_image`.
        if width / height > cols / rows:
            new_h = int(round(height * (cols / width), 7))
            rows -= ((rows - new_h) // 2) * 2
        else:
            new_w = int(round(width * (rows / height), 7))
            cols -= ((cols - new_w) // 2) * 2
        return side, rows, cols

    def _layout(self, batch: PreparedBatch, row: int) -> tuple[int, int, int, int, int]:
        span = batch.groups[row].image
        width, height = batch.image_sizes[row]
        side, rows, cols = self.anyres_shape(width, height)
        extra = len(span) - side * side - rows * (cols + 1)
        if extra < 0 or extra > 1:
            raise CliffscopeError(
                f"{self.family} image run of {len(span)} tokens does not match base {side}x{side} "
                f"+ anyres {rows}x({cols}+1)",
                hint="vision_feature_select_strategy or image_grid_pinpoints differ between "
                "the processor and the model config",
            )
        return span[0], extra, side, rows, cols

    def image_grids(self, batch: PreparedBatch, row: int) -> list[ImageGrid]:
        start, extra, side, rows, cols = self._layout(batch, row)
        box = full_box(*batch.image_sizes[row])
        base_start = start + extra
        base = list(range(base_start, base_start + side * side))
        any_start = base_start + side * side
        anyres = [any_start + r * (cols + 1) + c for r in range(rows) for c in range(cols)]
        return [
            ImageGrid(positions=base, rows=side, cols=side, box=box, label="base"),
            ImageGrid(positions=anyres, rows=rows, cols=cols, box=box, label="anyres"),
        ]

    def newline_positions(self, batch: PreparedBatch, row: int) -> list[int]:
        """Positions of the `image_newline` tokens closing each anyres row."""
        start, extra, side, rows, cols = self._layout(batch, row)
        any_start = start + extra + side * side
        return [any_start + r * (cols + 1) + cols for r in range(rows)]

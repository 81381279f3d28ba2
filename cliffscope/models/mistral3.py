"""Mistral3 (Mistral-Small-3.1 and later; Pixtral tower): one image-token row per patch row.

The processor resizes the image (longest edge, to whole patches) and writes one `[IMG]` per
merged patch (`spatial_merge_size` x `spatial_merge_size` patches), row by row, with
`[IMG_BREAK]` after every row but the last and `[IMG_END]` after the image: the image run is
interrupted by text. `image_sizes` holds the resized (height, width), which gives the grid; it
covers the whole original image.
"""

from __future__ import annotations

from typing import Any

from cliffscope.errors import CliffscopeError
from cliffscope.models.base import ImageGrid, ModelAdapter, PreparedBatch
from cliffscope.models.geometry import full_box


class Mistral3Adapter(ModelAdapter):
    family = "mistral3"
    model_types = ("mistral3",)
    description = "Mistral3 / Pixtral (rows of [IMG] separated by [IMG_BREAK])"

    @classmethod
    def model_class(cls) -> Any:
        from transformers import Mistral3ForConditionalGeneration

        return Mistral3ForConditionalGeneration

    def image_grids(self, batch: PreparedBatch, row: int) -> list[ImageGrid]:
        cfg = self.model.config
        step = int(cfg.vision_config.patch_size) * int(getattr(cfg, "spatial_merge_size", 1))
        height, width = (int(v) for v in batch.inputs["image_sizes"][row].tolist())
        rows, cols = height // step, width // step
        positions = list(batch.groups[row].image)
        if rows * cols != len(positions):
            raise CliffscopeError(
                f"mistral3 image of {len(positions)} tokens does not match {rows}x{cols}",
                hint="the processor's patch size or merge size differ from the model's",
            )
        box = full_box(*batch.image_sizes[row])
        return [ImageGrid(positions=positions, rows=rows, cols=cols, box=box, label="base")]

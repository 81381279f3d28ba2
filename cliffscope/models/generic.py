"""Any `AutoModelForImageTextToText` whose config names an `image_token_id`.

Groups, layers and generation work from the shared conventions; the image grid is a guess:
a square run of tokens (after any leading extras) over the processor's centre crop when it
crops (CLIP-style), else over the whole image. Families with a dedicated adapter are better
served by it.
"""

from __future__ import annotations

from typing import Any

from cliffscope.models.base import ImageGrid, ModelAdapter, PreparedBatch
from cliffscope.models.geometry import clip_view_box, full_box, square_grid


class GenericAdapter(ModelAdapter):
    """Fallback adapter; `image_grids` is empty when the image run is not a square."""

    family = "generic"
    model_types: tuple[str, ...] = ()
    description = "any image-text-to-text model whose config has an image token id"

    @classmethod
    def model_class(cls) -> Any:
        from transformers import AutoModelForImageTextToText

        return AutoModelForImageTextToText

    def image_grids(self, batch: PreparedBatch, row: int) -> list[ImageGrid]:
        span = batch.groups[row].image
        side, extra = square_grid(len(span))
        if extra > 2:  # not a square grid with a CLS or two in front: no honest layout
            return []
        width, height = batch.image_sizes[row]
        image_processor = getattr(self.processor, "image_processor", None)
        if getattr(image_processor, "do_center_crop", False):
            box = clip_view_box(image_processor, width, height)
        else:
            box = full_box(width, height)
        positions = list(span)[extra:]
        return [ImageGrid(positions=positions, rows=side, cols=side, box=box, label="base")]

"""LLaVA-1.5 (`LlavaForConditionalGeneration`): one square grid of CLIP patch tokens."""

from __future__ import annotations

from typing import Any

from cliffscope.models.base import ImageGrid, ModelAdapter, PreparedBatch
from cliffscope.models.geometry import clip_view_box, square_grid


class LlavaAdapter(ModelAdapter):
    """LLaVA-1.5: `<image>` expands to (crop/patch)^2 tokens (576 at 336 px / patch 14).

    The grid covers the processor's centre crop (after pad-to-square when the image processor
    pads), mapped back onto the original image.
    """

    family = "llava"
    model_types = ("llava",)
    description = "LLaVA-1.5 (CLIP; one square grid, 576 tokens at 336 px)"

    @classmethod
    def model_class(cls) -> Any:
        from transformers import LlavaForConditionalGeneration

        return LlavaForConditionalGeneration

    def image_grids(self, batch: PreparedBatch, row: int) -> list[ImageGrid]:
        span = batch.groups[row].image
        side, extra = square_grid(len(span))
        width, height = batch.image_sizes[row]
        box = clip_view_box(self.processor.image_processor, width, height)
        positions = list(span)[extra:]
        return [ImageGrid(positions=positions, rows=side, cols=side, box=box, label="base")]

"""Gemma 3 (`Gemma3ForConditionalGeneration`): pooled SigLIP soft tokens, local + global layers.

Each image becomes `mm_tokens_per_image` soft tokens (a square grid, row-major: SigLIP patches
average-pooled) between `<start_of_image>` and `<end_of_image>` (text markers). The image
processor resizes the whole image to the tower's size, so the grid covers the whole original
image. With pan-and-scan on, the original image comes first and crops follow, each its own run;
only the first run gets a grid (the crops' boxes are not reconstructed).

What the engines must keep: sliding-window and global layers with different rotary tables
(each layer's own `position_embeddings`, rewritten per layer), windows counted in original
positions (`layer_windows`), and image tokens attending to each other both ways
(`attention_blocks`, marked by `token_type_ids`, which the model needs). The processor takes
one list of images per prompt.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from cliffscope.models.base import ImageGrid, ModelAdapter, PreparedBatch
from cliffscope.models.geometry import full_box

if TYPE_CHECKING:
    import torch
    from PIL import Image


class Gemma3Adapter(ModelAdapter):
    family = "gemma3"
    model_types = ("gemma3",)
    description = "Gemma 3 (SigLIP, pooled soft tokens; sliding + global layers, 2 rope bases)"

    @classmethod
    def model_class(cls) -> Any:
        from transformers import Gemma3ForConditionalGeneration

        return Gemma3ForConditionalGeneration

    def processor_images(self, images: list[Image.Image]) -> list[Any]:
        return [[image] for image in images]

    def attention_blocks(self, batch: PreparedBatch) -> torch.Tensor | None:
        """(B, S) ids: positions with the same id > 0 see each other both ways (one image run)."""
        import torch

        blocks = torch.zeros(batch.input_ids.shape, dtype=torch.long, device=batch.input_ids.device)
        for row, groups in enumerate(batch.groups):
            for n, run in enumerate(groups.image_runs, start=1):
                blocks[row, run.start : run.stop] = n
        return blocks

    def image_grids(self, batch: PreparedBatch, row: int) -> list[ImageGrid]:
        runs = batch.groups[row].image_runs
        side = math.isqrt(len(runs[0]))
        if side * side != len(runs[0]):
            return []
        box = full_box(*batch.image_sizes[row])
        return [ImageGrid(positions=list(runs[0]), rows=side, cols=side, box=box, label="base")]

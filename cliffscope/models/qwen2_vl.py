"""Qwen2-VL and Qwen2.5-VL: one grid per image from `image_grid_thw` and the merge size.

The image processor resizes the whole image (no crop) to multiples of `patch_size *
merge_size`; the vision merger turns each `merge_size x merge_size` block of patches into one
token, in row-major order over the merged grid (the same order `get_rope_index` assumes for
M-RoPE). `<|vision_start|>` falls in the system group, `<|vision_end|>` in the instruction.
"""

from __future__ import annotations

from typing import Any

from cliffscope.errors import CliffscopeError
from cliffscope.models import compat
from cliffscope.models.base import ImageGrid, ModelAdapter, PreparedBatch
from cliffscope.models.geometry import full_box


class Qwen2VLAdapter(ModelAdapter):
    family = "qwen2-vl"
    model_types = ("qwen2_vl",)
    description = "Qwen2-VL (dynamic resolution, 2x2 merge, M-RoPE)"

    @classmethod
    def model_class(cls) -> Any:
        from transformers import Qwen2VLForConditionalGeneration

        return Qwen2VLForConditionalGeneration

    @property
    def merge_size(self) -> int:
        return int(self.model.config.vision_config.spatial_merge_size)

    def position_ids(self, batch: PreparedBatch) -> Any:
        """(4, B, S) as generate makes them: the padding-aware text row, then the M-RoPE rows
        (temporal, height, width) from the model's `get_rope_index`."""
        import torch

        text = super().position_ids(batch)
        rope, _ = compat.rope_index(self.model, batch.inputs)
        return torch.cat([text[None], rope.to(text.device)], dim=0)

    def image_grids(self, batch: PreparedBatch, row: int) -> list[ImageGrid]:
        # One image per row, so row r's image is image r of `image_grid_thw`.
        t, h, w = (int(v) for v in batch.inputs["image_grid_thw"][row].tolist())
        rows, cols = h // self.merge_size, w // self.merge_size
        span = batch.groups[row].image
        if t * rows * cols != len(span):
            raise CliffscopeError(
                f"image_grid_thw {(t, h, w)} gives {t * rows * cols} tokens, the prompt has {len(span)}"
            )
        box = full_box(*batch.image_sizes[row])
        per_frame = rows * cols
        return [
            ImageGrid(
                positions=list(span)[f * per_frame : (f + 1) * per_frame],
                rows=rows,
                cols=cols,
                box=box,
                label="base" if t == 1 else f"frame {f}",
            )
            for f in range(t)
        ]


class Qwen2_5_VLAdapter(Qwen2VLAdapter):
    family = "qwen2.5-vl"
    model_types = ("qwen2_5_vl",)
    description = "Qwen2.5-VL (as Qwen2-VL, windowed vision attention)"

    @classmethod
    def model_class(cls) -> Any:
        from transformers import Qwen2_5_VLForConditionalGeneration

        return Qwen2_5_VLForConditionalGeneration

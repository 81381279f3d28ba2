"""Qwen3-VL: Qwen2-VL's image layout, interleaved M-RoPE, and deepstack injections.

The image run is `<|vision_start|>` + `<|image_pad|>` x (t*h*w / merge^2) + `<|vision_end|>`,
one grid per image from `image_grid_thw`, row-major over the merged grid (as Qwen2-VL). Deepstack
adds features of vision-tower layers `deepstack_visual_indexes` to the hidden states at image
positions after decoder layers 0 .. n-1; `injections()` hands engines the hooks that keep those
additions on the rows that survive truncation (see `models.injection`).
"""

from __future__ import annotations

from typing import Any

from cliffscope.models.injection import Injections
from cliffscope.models.qwen2_vl import Qwen2VLAdapter


class Qwen3VLAdapter(Qwen2VLAdapter):
    family = "qwen3-vl"
    model_types = ("qwen3_vl",)
    description = "Qwen3-VL (dense; interleaved M-RoPE, deepstack features in early layers)"

    @classmethod
    def model_class(cls) -> Any:
        from transformers import Qwen3VLForConditionalGeneration

        return Qwen3VLForConditionalGeneration

    def injections(self) -> Injections:
        indexes = getattr(self.model.config.vision_config, "deepstack_visual_indexes", None) or []
        return Injections(
            self,
            mask_kwarg="visual_pos_masks",
            features_kwarg="deepstack_visual_embeds",
            n_layers=len(indexes),
        )

"""LLaVA-OneVision (`LlavaOnevisionForConditionalGeneration`): LLaVA-NeXT's layout on SigLIP.

Token order inside the image run (transformers' `LlavaOnevisionModel.pack_image_features`): a
`side x side` base view of the whole image, then the anyres tiles stitched into one feature map
and unpadded to the image's aspect ratio, shrunk (bilinear) when it holds more than
`anyres_max_N` tiles' worth of features, written row by row with one `image_newline` after
each row. All of these carry `image_token_id`; the grids are the same two as LLaVA-NeXT's
("base" and "anyres", newlines excluded), both over the whole original image.
"""

from __future__ import annotations

import math
from typing import Any

from cliffscope.models.llava_next import LlavaNextAdapter


class LlavaOnevisionAdapter(LlavaNextAdapter):
    family = "llava-onevision"
    model_types = ("llava_onevision",)
    description = "LLaVA-OneVision (SigLIP; base view + anyres tiles + newlines, max-N shrink)"

    @classmethod
    def model_class(cls) -> Any:
        from transformers import LlavaOnevisionForConditionalGeneration

        return LlavaOnevisionForConditionalGeneration

    def anyres_shape(self, width: int, height: int) -> tuple[int, int, int]:
        """(side, rows, cols) after unpadding and the `anyres_max_N` shrink."""
        side, rows, cols = super().anyres_shape(width, height)
        aspect = str(getattr(self.model.config, "vision_aspect_ratio", "anyres_max_9"))
        max_tiles = int(aspect.removeprefix("anyres_max_"))
        ratio = math.sqrt(rows * cols / (max_tiles * side**2))
        if ratio > 1.1:  # the same arithmetic as pack_image_features' interpolate
            rows, cols = int(rows // ratio), int(cols // ratio)
        return side, rows, cols

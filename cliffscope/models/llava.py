"""LLaVA-1.5 (`LlavaForConditionalGeneration`): one square grid of CLIP patch tokens."""

from __future__ import annotations

from typing import Any

from cliffscope.errors import CliffscopeError
from cliffscope.models import compat
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

    def vision_saliency(self) -> Any:
        """The tower layer whose output is the feature layer (`vision_feature_layer` indexes
        hidden states: -2 is the output of layer L-2); with a CLS token its query row, else the
        mean received attention; the "default" feature strategy drops key 0 (CLS), as the
        model drops it from the features, so image token i is patch i."""
        from cliffscope.models.saliency import VisionSaliency, place

        cfg = self.model.config
        feature = cfg.vision_feature_layer
        if not isinstance(feature, int):
            raise CliffscopeError(
                f"cls: vision_feature_layer {feature!r} concatenates several layers; "
                "which layer's attention ranks the tokens is not defined"
            )
        vision = compat.vision_transformer(self.model.model.vision_tower)
        layers = vision.encoder.layers
        layer = len(layers) + feature if feature < 0 else feature - 1
        if not 0 <= layer < len(layers):
            raise CliffscopeError(f"cls: vision_feature_layer {feature} has no attention layer")
        has_cls = getattr(vision.embeddings, "class_embedding", None) is not None
        drop = 1 if cfg.vision_feature_select_strategy == "default" else 0

        def to_tokens(batch: PreparedBatch, per_image: list[Any]) -> Any:
            return place(batch, [s[drop:] for s in per_image], "llava cls")

        return VisionSaliency(
            module=layers[layer].self_attn,
            kind="cls" if has_cls else "received",
            layer=layer,
            to_tokens=to_tokens,
        )

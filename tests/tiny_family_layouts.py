"""Shared harness for the tests of the tiny 2026-family checkpoints (`tests/tiny_families.py`):
the test images and prompts, each family's rule for how many image tokens a prompt carries
(derived from the processor's outputs, the way an engine must map positions back to pixels),
and a loader that builds, saves and reloads a family once per test module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from tests.tiny_families import FAMILY_BUILDERS


def _question(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]


#: one image turn per prompt; the second is longer, so a batch is left-padded in every family
QUESTIONS = [_question("What colour?"), _question("What colour is the shape in this image?")]


def _noise(height: int, width: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


#: a landscape 3:2 and a portrait 1:3 image (height x width), and a second draw of each
IMAGES = [_noise(32, 48, 0), _noise(48, 16, 1)]
OTHER_IMAGES = [_noise(32, 48, 2), _noise(48, 16, 3)]


# --- the count of image tokens per prompt, derived from each processor's outputs -------------


def onevision_grids(enc: Any, cfg: Any) -> list[tuple[int, int, int]]:
    """(side, rows, cols) per image: a side x side base view, then the anyres tiles' feature
    grid unpadded to the image's aspect ratio (rows x cols)."""
    from transformers.image_processing_utils import select_best_resolution

    tile = cfg.vision_config.image_size
    side = tile // cfg.vision_config.patch_size
    grids = []
    for h, w in enc["image_sizes"].tolist():
        best_h, best_w = select_best_resolution([h, w], cfg.image_grid_pinpoints)
        rows, cols = side * best_h // tile, side * best_w // tile
        if w / h > cols / rows:
            rows -= 2 * ((rows - int(round(h * cols / w, 7))) // 2)
        else:
            cols -= 2 * ((cols - int(round(w * rows / h, 7))) // 2)
        grids.append((side, rows, cols))
    return grids


def _onevision(enc: Any, proc: Any, cfg: Any) -> list[int]:
    """The base view, then each unpadded row followed by one newline feature."""
    return [side * side + rows * (cols + 1) for side, rows, cols in onevision_grids(enc, cfg)]


def _qwen3_vl(enc: Any, proc: Any, cfg: Any) -> list[int]:
    merge = cfg.vision_config.spatial_merge_size
    return (enc["image_grid_thw"].prod(-1) // merge**2).tolist()


def _internvl(enc: Any, proc: Any, cfg: Any) -> list[int]:
    """Tiles (cols x rows chosen by aspect ratio) plus a thumbnail when there is more than one,
    each pixel-shuffled to (side/2)^2 tokens."""
    from transformers.models.got_ocr2.image_processing_got_ocr2 import get_optimal_tiled_canvas

    ip = proc.image_processor
    tile = (ip.size["height"], ip.size["width"])
    views = []
    for image in IMAGES:
        cols, rows = get_optimal_tiled_canvas(
            (image.height, image.width), tile, ip.min_patches, ip.max_patches
        )
        views.append(cols * rows + (cols * rows > 1))
    assert sum(views) == enc["pixel_values"].shape[0]
    side = cfg.vision_config.image_size[0] // cfg.vision_config.patch_size[0]
    return [n * int(side * cfg.downsample_ratio) ** 2 for n in views]


def _gemma3(enc: Any, proc: Any, cfg: Any) -> list[int]:
    return [cfg.mm_tokens_per_image] * enc["input_ids"].shape[0]


def _idefics(enc: Any, proc: Any, cfg: Any) -> list[int]:
    """Every real view (tiles + global image; padding views are all zero) gives (side/scale)^2."""
    real = enc["pixel_values"].flatten(2).ne(0).any(-1).sum(-1)
    side = cfg.vision_config.image_size // cfg.vision_config.patch_size
    return (real * (side // cfg.scale_factor) ** 2).tolist()


def _mistral3(enc: Any, proc: Any, cfg: Any) -> list[int]:
    step = cfg.vision_config.patch_size * cfg.spatial_merge_size
    return [(h // step) * (w // step) for h, w in enc["image_sizes"].tolist()]


@dataclass(frozen=True)
class Family:
    model_class: str
    image_token: str
    count: Callable[[Any, Any, Any], list[int]]
    nested: bool = False  # the processor wants one list of images per prompt
    template_bos: bool = False  # the template writes BOS and the tokenizer adds another
    square: bool = False  # every image is resized to one fixed grid
    needs: str | None = None


FAMILIES = {
    "llava-onevision": Family(
        "LlavaOnevisionForConditionalGeneration",
        "<image>",
        _onevision,
    ),
    "qwen3-vl": Family(
        "Qwen3VLForConditionalGeneration",
        "<|image_pad|>",
        _qwen3_vl,
    ),
    "internvl": Family(
        "InternVLForConditionalGeneration",
        "<IMG_CONTEXT>",
        _internvl,
    ),
    "gemma3": Family(
        "Gemma3ForConditionalGeneration",
        "<image_soft_token>",
        _gemma3,
        nested=True,
        template_bos=True,
        square=True,
    ),
    "idefics3": Family(
        "Idefics3ForConditionalGeneration",
        "<image>",
        _idefics,
        template_bos=True,
    ),
    "smolvlm": Family(
        "SmolVLMForConditionalGeneration",
        "<image>",
        _idefics,
        nested=True,
        needs="num2words",
    ),
    "mistral3": Family(
        "Mistral3ForConditionalGeneration",
        "[IMG]",
        _mistral3,
        template_bos=True,
    ),
}


@dataclass
class Loaded:
    name: str
    family: Family
    model: Any
    processor: Any
    prompts: list[str]

    @property
    def image_id(self) -> int:
        cfg = self.model.config
        return getattr(cfg, "image_token_id", None) or cfg.image_token_index

    def encode(self, images: list[Image.Image], **kwargs: Any) -> Any:
        batch = [[image] for image in images] if self.family.nested else images
        return self.processor(
            text=self.prompts[: len(images)], images=batch, padding=True,
            padding_side="left", return_tensors="pt", **kwargs,
        )  # fmt: skip

    def ids(self, *tokens: str) -> list[int]:
        return [self.processor.tokenizer.convert_tokens_to_ids(t) for t in tokens]


class FamilyLoader:
    """`loader(name)` builds, saves and reloads a family once; later calls reuse it."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._tmp = tmp_path_factory
        self._cache: dict[str, Loaded] = {}

    def __call__(self, name: str) -> Loaded:
        if name not in self._cache:
            self._cache[name] = self._load(name)
        return self._cache[name]

    def _load(self, name: str) -> Loaded:
        import transformers
        from transformers import AutoModelForImageTextToText, AutoProcessor

        family = FAMILIES[name]
        if family.needs:
            pytest.importorskip(family.needs, reason=f"the {name} processor needs it")
        path = FAMILY_BUILDERS[name](self._tmp.mktemp(name) / "model")
        model = AutoModelForImageTextToText.from_pretrained(path).eval()
        assert type(model) is getattr(transformers, family.model_class)
        processor = AutoProcessor.from_pretrained(path)
        prompts = [
            processor.apply_chat_template(q, add_generation_prompt=True, tokenize=False)
            for q in QUESTIONS
        ]
        return Loaded(name, family, model, processor, prompts)


def image_runs(row: torch.Tensor, token_id: int) -> list[tuple[int, int]]:
    """(start, end) of each maximal run of `token_id` in a 1-D id tensor."""
    hit = torch.cat([torch.tensor([False]), row == token_id, torch.tensor([False])]).int()
    edges = hit.diff()
    return list(
        zip(
            edges.eq(1).nonzero().flatten().tolist(),
            edges.eq(-1).nonzero().flatten().tolist(),
            strict=True,
        )
    )

"""Tiny offline checkpoints for the 2026 VLM families (OneVision, Qwen3-VL, InternVL, Gemma 3,
Idefics3, SmolVLM, Mistral3), in the style of `cliffscope/conformance/builders.py`.

Each `build_tiny_<family>(path)` writes a real checkpoint (config, safetensors, tokenizer,
processor with chat template) through the family's own config, tokenizer and processor classes,
so `from_pretrained(path)` and `AutoProcessor.from_pretrained(path)` load it like a released one.
Sizes are chosen so a prompt carries about 15-80 image tokens and a forward takes milliseconds,
with the family's tiling / anyres / row separators left on: the engines must handle several
grids and separator tokens inside one image span. Weights are random (fixed seed) except where a
fresh config starts a projector at zero, which would make the image irrelevant (Gemma 3).
`FAMILY_BUILDERS` maps a family name to its builder. Differences between transformers 4.57
and 5.x are kept in `cliffscope/models/compat.py`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedTokenizerFast

from cliffscope.conformance import tokenizers as tt
from cliffscope.conformance.builders import SEED, _save, _settle_generation_config
from cliffscope.conformance.tokenizers import make_word_tokenizer
from cliffscope.models.compat import qwen_pixel_kwargs, qwen_tokenizer_class, rope_kwargs


def _model(cls: Any, config: Any, tok: PreTrainedTokenizerFast) -> Any:
    torch.manual_seed(SEED)
    model = cls(config).eval()
    _settle_generation_config(model, tok)
    return model


def _generator() -> torch.Generator:
    return torch.Generator().manual_seed(SEED)


def _text(tok: PreTrainedTokenizerFast, num_layers: int, **kw: Any) -> dict[str, Any]:
    """A GQA decoder of hidden 64, head_dim 16, as a config dict for any family's text model."""
    return {
        "vocab_size": len(tok),
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": num_layers,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "max_position_embeddings": 512,
        "bos_token_id": tok.bos_token_id,
        "eos_token_id": tok.eos_token_id,
        "pad_token_id": tok.pad_token_id,
        **kw,
    }


_VISION = {"hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 2}


def _chatml_tokenizer(specials: list[str], **kw: Any) -> PreTrainedTokenizerFast:
    """A Qwen2-style tokenizer: ChatML specials, no BOS, "\n" as a token."""
    return make_word_tokenizer(
        specials, unk="<unk>", pad="<|endoftext|>", eos="<|im_end|>",
        extra_words=["im_start", "im_end"], newlines=True, cls=qwen_tokenizer_class(), **kw,
    )  # fmt: skip


# --- LLaVA-OneVision ------------------------------------------------------------------------


def build_tiny_llava_onevision(
    path: Path, *, num_layers: int = 3, image_size: int = 32, patch_size: int = 8
) -> Path:
    """SigLIP tower (no CLS, last layer), Qwen2 text; base view + unpadded anyres tiles + newlines."""
    from transformers import (
        LlavaOnevisionConfig,
        LlavaOnevisionForConditionalGeneration,
        LlavaOnevisionImageProcessor,
        LlavaOnevisionProcessor,
        LlavaOnevisionVideoProcessor,
    )

    tok = _chatml_tokenizer(tt.ONEVISION_SPECIALS, extra={"image_token": "<image>"})
    s = image_size
    pinpoints = [[s * r, s * c] for r in (1, 2) for c in (1, 2)]
    config = LlavaOnevisionConfig(
        vision_config={
            "model_type": "siglip_vision_model", **_VISION, "num_hidden_layers": 2,
            "image_size": s, "patch_size": patch_size, "vision_use_head": False,
        },
        text_config={"model_type": "qwen2", **_text(tok, num_layers), **rope_kwargs(1e6)},
        image_token_index=tok.convert_tokens_to_ids("<image>"),
        video_token_index=tok.convert_tokens_to_ids("<video>"),
        image_grid_pinpoints=pinpoints,
        vision_feature_select_strategy="full",
        vision_feature_layer=-1,
    )  # fmt: skip
    sizes = {"size": {"height": s, "width": s}, "crop_size": {"height": s, "width": s}}
    processor = LlavaOnevisionProcessor(
        image_processor=LlavaOnevisionImageProcessor(image_grid_pinpoints=pinpoints, **sizes),
        video_processor=LlavaOnevisionVideoProcessor(**sizes),
        tokenizer=tok,
        num_image_tokens=(s // patch_size) ** 2,
        vision_feature_select_strategy="full",
        chat_template=tt.ONEVISION_TEMPLATE,
    )
    model = _model(LlavaOnevisionForConditionalGeneration, config, tok)
    return _save(model, processor, Path(path))


# --- Qwen3-VL -------------------------------------------------------------------------------


def build_tiny_qwen3_vl(path: Path, *, num_layers: int = 3, patch_size: int = 4) -> Path:
    """Qwen3-VL: 2x2-merged dynamic grid, interleaved M-RoPE, deepstack into text layers 0-1."""
    from transformers import (
        Qwen2VLImageProcessor,
        Qwen3VLConfig,
        Qwen3VLForConditionalGeneration,
        Qwen3VLProcessor,
        Qwen3VLVideoProcessor,
    )

    tok = _chatml_tokenizer(tt.QWEN_SPECIALS)
    ids = tok.convert_tokens_to_ids
    # head_dim 16 -> 8 rotary frequencies; interleaved (t,h,w): h at 1,4 and w at 2,5
    rope = rope_kwargs(5e6, mrope_section=[4, 2, 2], mrope_interleaved=True)
    config = Qwen3VLConfig(
        text_config={**_text(tok, num_layers, bos_token_id=None), **rope},
        vision_config={
            **_VISION, "depth": 2, "out_hidden_size": 64, "num_heads": 2,
            "patch_size": patch_size, "spatial_merge_size": 2, "temporal_patch_size": 2,
            "num_position_embeddings": 64, "deepstack_visual_indexes": [0, 1],
        },
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
    )  # fmt: skip
    factor = patch_size * 2
    sizes = {
        "patch_size": patch_size,
        "merge_size": 2,
        "temporal_patch_size": 2,
        **qwen_pixel_kwargs((2 * factor) ** 2, (6 * factor) ** 2),
    }
    processor = Qwen3VLProcessor(
        image_processor=Qwen2VLImageProcessor(**sizes),
        video_processor=Qwen3VLVideoProcessor(**sizes),
        tokenizer=tok,
        chat_template=tt.QWEN3_VL_TEMPLATE,
    )
    model = _model(Qwen3VLForConditionalGeneration, config, tok)
    return _save(model, processor, Path(path))


# --- InternVL -------------------------------------------------------------------------------


def build_tiny_internvl(
    path: Path, *, num_layers: int = 3, image_size: int = 32, patch_size: int = 4
) -> Path:
    """InternVL3-hf layout: InternViT (CLS dropped), pixel shuffle 0.5, tiles + thumbnail, Qwen2."""
    from transformers import (
        GotOcr2ImageProcessor,
        InternVLConfig,
        InternVLForConditionalGeneration,
        InternVLProcessor,
        InternVLVideoProcessor,
    )

    tok = _chatml_tokenizer(
        tt.INTERNVL_SPECIALS,
        extra={
            "start_image_token": "<img>",
            "end_image_token": "</img>",
            "context_image_token": "<IMG_CONTEXT>",
            "video_token": "<video>",
        },
    )
    per_tile = (image_size // patch_size) ** 2 // 4
    config = InternVLConfig(
        vision_config={
            **_VISION, "num_hidden_layers": 2,
            "image_size": [image_size, image_size], "patch_size": [patch_size, patch_size],
        },
        text_config={"model_type": "qwen2", **_text(tok, num_layers), **rope_kwargs(1e6)},
        image_token_id=tok.convert_tokens_to_ids("<IMG_CONTEXT>"),
        image_seq_length=per_tile,
        downsample_ratio=0.5,
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
    )  # fmt: skip
    size = {"height": image_size, "width": image_size}
    processor = InternVLProcessor(
        image_processor=GotOcr2ImageProcessor(
            size=size, crop_to_patches=True, min_patches=1, max_patches=4
        ),
        video_processor=InternVLVideoProcessor(size=size),
        tokenizer=tok,
        image_seq_length=per_tile,
        chat_template=tt.INTERNVL_TEMPLATE,
    )
    model = _model(InternVLForConditionalGeneration, config, tok)
    return _save(model, processor, Path(path))


# --- Gemma 3 --------------------------------------------------------------------------------


def build_tiny_gemma3(
    path: Path,
    *,
    num_layers: int = 3,
    sliding_window: int = 8,
    image_size: int = 32,
    patch_size: int = 4,
    tokens_per_image: int = 16,
) -> Path:
    """Gemma 3: SigLIP + 4x avg-pooled soft tokens between <start_of_image> and <end_of_image>;
    sliding (theta 1e4, window `sliding_window`) and global (theta 1e6) layers alternate."""
    from transformers import (
        Gemma3Config,
        Gemma3ForConditionalGeneration,
        Gemma3ImageProcessor,
        Gemma3Processor,
    )

    tok = make_word_tokenizer(
        tt.GEMMA3_SPECIALS, unk="<unk>", pad="<pad>", eos="<end_of_turn>", bos="<bos>",
        extra_words=["model", "here", "original", "some", "crops", "help", "see", "better"],
        extra={
            "image_token": "<image_soft_token>", "boi_token": "<start_of_image>",
            "eoi_token": "<end_of_image>",
        },
        newlines=True,
    )  # fmt: skip
    layer_types = ["full_attention" if i % 2 else "sliding_attention" for i in range(num_layers)]
    text = _text(
        tok, num_layers, sliding_window=sliding_window, layer_types=layer_types,
        query_pre_attn_scalar=16, **rope_kwargs(1e6, local_theta=1e4),
    )  # fmt: skip
    ids = tok.convert_tokens_to_ids
    config = Gemma3Config(
        text_config=text,
        vision_config={
            "model_type": "siglip_vision_model", **_VISION, "num_hidden_layers": 2,
            "image_size": image_size, "patch_size": patch_size, "vision_use_head": False,
        },
        mm_tokens_per_image=tokens_per_image,
        image_token_index=ids("<image_soft_token>"),
        boi_token_index=ids("<start_of_image>"),
        eoi_token_index=ids("<end_of_image>"),
    )  # fmt: skip
    processor = Gemma3Processor(
        image_processor=Gemma3ImageProcessor(size={"height": image_size, "width": image_size}),
        tokenizer=tok,
        image_seq_length=tokens_per_image,
        chat_template=tt.GEMMA3_TEMPLATE,
    )
    model = _model(Gemma3ForConditionalGeneration, config, tok)
    # A fresh config starts the projector at zero: every image would embed to the same vector.
    proj = model.model.multi_modal_projector.mm_input_projection_weight
    with torch.no_grad():
        proj.normal_(0.0, config.text_config.initializer_range, generator=_generator())
    return _save(model, processor, Path(path))


# --- Idefics3 / SmolVLM ---------------------------------------------------------------------


def _idefics_parts(image_size: int, patch_size: int, scale_factor: int) -> dict[str, Any]:
    """Vision config and image-processor sizes shared by Idefics3 and SmolVLM: images are scaled
    to a longest edge of 2 tiles, split into up to 2x2 tiles of `image_size`, plus a global view."""
    return {
        "vision": {**_VISION, "num_hidden_layers": 2, "image_size": image_size,
                   "patch_size": patch_size},
        "sizes": {"size": {"longest_edge": 2 * image_size},
                  "max_image_size": {"longest_edge": image_size}},
        "seq_len": (image_size // patch_size) ** 2 // scale_factor**2,
    }  # fmt: skip


def _idefics_tokenizer(specials: list[str], bos: str | None, eos: str, pad: str):
    return make_word_tokenizer(
        specials, unk="<unk>", pad=pad, eos=eos, bos=bos, newlines=True,
        extra_words=["User", "Assistant"],
    )  # fmt: skip


def build_tiny_idefics3(
    path: Path, *, num_layers: int = 3, image_size: int = 32, patch_size: int = 4
) -> Path:
    """Idefics3: SigLIP-like tower, pixel shuffle x2, Llama text; tiles with <row_r_col_c> and
    <fake_token_around_image> markers inside the image span, then a <global-img> view."""
    from transformers import (
        Idefics3Config,
        Idefics3ForConditionalGeneration,
        Idefics3ImageProcessor,
        Idefics3Processor,
    )

    tok = _idefics_tokenizer(
        tt.IDEFICS3_SPECIALS, bos="<|begin_of_text|>", eos="<end_of_utterance>",
        pad="<|end_of_text|>",
    )  # fmt: skip
    parts = _idefics_parts(image_size, patch_size, 2)
    config = Idefics3Config(
        vision_config=parts["vision"],
        text_config={"model_type": "llama", **_text(tok, num_layers), **rope_kwargs(5e5)},
        image_token_id=tok.convert_tokens_to_ids("<image>"),
        scale_factor=2,
    )
    processor = Idefics3Processor(
        image_processor=Idefics3ImageProcessor(**parts["sizes"]),
        tokenizer=tok,
        image_seq_len=parts["seq_len"],
        chat_template=tt.IDEFICS3_TEMPLATE,
    )
    model = _model(Idefics3ForConditionalGeneration, config, tok)
    return _save(model, processor, Path(path))


def build_tiny_smolvlm(
    path: Path, *, num_layers: int = 3, image_size: int = 32, patch_size: int = 4
) -> Path:
    """SmolVLM: the Idefics3 layout with a SmolLM2 (Llama) text model and ChatML-ish template.

    Its processor needs the `num2words` package (imports it at construction)."""
    from transformers import (
        SmolVLMConfig,
        SmolVLMForConditionalGeneration,
        SmolVLMImageProcessor,
        SmolVLMProcessor,
        SmolVLMVideoProcessor,
    )

    tok = _idefics_tokenizer(
        tt.SMOLVLM_SPECIALS, bos=None, eos="<end_of_utterance>", pad="<|endoftext|>"
    )
    parts = _idefics_parts(image_size, patch_size, 2)
    config = SmolVLMConfig(
        vision_config=parts["vision"],
        text_config={"model_type": "llama", **_text(tok, num_layers), **rope_kwargs(1e5)},
        image_token_id=tok.convert_tokens_to_ids("<image>"),
        scale_factor=2,
    )
    processor = SmolVLMProcessor(
        image_processor=SmolVLMImageProcessor(**parts["sizes"]),
        video_processor=SmolVLMVideoProcessor(**parts["sizes"]),
        tokenizer=tok,
        image_seq_len=parts["seq_len"],
        chat_template=tt.SMOLVLM_TEMPLATE,
    )
    model = _model(SmolVLMForConditionalGeneration, config, tok)
    return _save(model, processor, Path(path))


# --- Mistral3 (Pixtral tower) ---------------------------------------------------------------


def build_tiny_mistral3(
    path: Path, *, num_layers: int = 3, patch_size: int = 4, longest_edge: int = 48
) -> Path:
    """Mistral-Small-3.1 layout: Pixtral tower (2-D rotary), 2x2 patch merger, Mistral text;
    one [IMG] per merged patch, [IMG_BREAK] after every row but the last, then [IMG_END]."""
    from transformers import (
        Mistral3Config,
        Mistral3ForConditionalGeneration,
        PixtralImageProcessor,
        PixtralProcessor,
    )

    tok = make_word_tokenizer(
        tt.MISTRAL3_SPECIALS, unk="<unk>", pad="<pad>", eos="</s>", bos="<s>", newlines=True
    )
    config = Mistral3Config(
        vision_config={
            "model_type": "pixtral", **_VISION, "num_hidden_layers": 2,
            "image_size": longest_edge, "patch_size": patch_size,
        },
        text_config={"model_type": "mistral", **_text(tok, num_layers), **rope_kwargs(1e9)},
        image_token_index=tok.convert_tokens_to_ids("[IMG]"),
        spatial_merge_size=2,
        vision_feature_layer=-1,
    )  # fmt: skip
    processor = PixtralProcessor(
        image_processor=PixtralImageProcessor(
            size={"longest_edge": longest_edge}, patch_size=patch_size * 2
        ),
        tokenizer=tok,
        patch_size=patch_size,
        spatial_merge_size=2,
        chat_template=tt.MISTRAL3_TEMPLATE,
    )
    model = _model(Mistral3ForConditionalGeneration, config, tok)
    return _save(model, processor, Path(path))


#: builder per family, for parametrised tests
FAMILY_BUILDERS = {
    "llava-onevision": build_tiny_llava_onevision,
    "qwen3-vl": build_tiny_qwen3_vl,
    "internvl": build_tiny_internvl,
    "gemma3": build_tiny_gemma3,
    "idefics3": build_tiny_idefics3,
    "smolvlm": build_tiny_smolvlm,
    "mistral3": build_tiny_mistral3,
}

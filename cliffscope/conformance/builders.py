"""Tiny, offline, randomly initialised VLM checkpoints for tests.

Each `build_tiny_*` writes a real Hugging Face checkpoint directory (config, safetensors weights,
tokenizer, processor with its chat template) and returns its path, so tests load it through the
same `from_pretrained(path)` code path a real model takes. Nothing touches the network: the
tokenizers come from `conformance/tokenizers.py`; the processors are the real classes.

Builders are deterministic (fixed seed) and take well under a few seconds. They live in the
package because `cliffscope models support` runs the conformance checks on them; tests reach
them through `tests/tiny_models.py` and the session fixtures in `tests/conftest.py`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedTokenizerFast

from cliffscope.conformance.tokenizers import (
    LLAMA_SPECIALS,
    LLAVA_NEXT_TEMPLATE,
    LLAVA_TEMPLATE,
    QWEN2_VL_TEMPLATE,
    QWEN_SPECIALS,
    make_word_tokenizer,
)
from cliffscope.models.compat import qwen_pixel_kwargs, qwen_tokenizer_class, rope_kwargs

SEED = 0


def _save(model: Any, processor: Any, path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path, safe_serialization=True)
    processor.save_pretrained(path)
    return path


def _llama_text(vocab: int, tok: PreTrainedTokenizerFast, model_type: str = "llama", **kw: Any):
    from transformers import LlamaConfig, MistralConfig

    cls = {"llama": LlamaConfig, "mistral": MistralConfig}[model_type]
    return cls(
        vocab_size=vocab,
        hidden_size=kw.pop("hidden_size", 64),
        intermediate_size=kw.pop("intermediate_size", 128),
        num_hidden_layers=kw.pop("num_hidden_layers", 3),
        num_attention_heads=kw.pop("num_attention_heads", 4),
        num_key_value_heads=kw.pop("num_key_value_heads", 4),
        max_position_embeddings=512,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        **kw,
    )


def _clip_vision(image_size: int, patch_size: int):
    from transformers import CLIPVisionConfig

    return CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=image_size,
        patch_size=patch_size,
        projection_dim=32,
    )


def llava_tokenizer() -> PreTrainedTokenizerFast:
    return make_word_tokenizer(
        LLAMA_SPECIALS, unk="<unk>", pad="<pad>", eos="</s>", bos="<s>",
        extra={"image_token": "<image>"},
    )  # fmt: skip


def clip_image_processor(image_size: int):
    """CLIP preprocessing that keeps a square image of the tower's size as it is."""
    from transformers import CLIPImageProcessor

    return CLIPImageProcessor(
        size={"shortest_edge": image_size},
        crop_size={"height": image_size, "width": image_size},
    )


def build_tiny_llava(
    path: Path, *, image_size: int = 32, patch_size: int = 8, num_layers: int = 3
) -> Path:
    """LLaVA-1.5 layout: CLIP tower (CLS dropped), Llama text model, (image/patch)^2 tokens."""
    from transformers import (
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    tok = llava_tokenizer()
    config = LlavaConfig(
        vision_config=_clip_vision(image_size, patch_size),
        text_config=_llama_text(len(tok), tok, num_hidden_layers=num_layers),
        image_token_id=tok.convert_tokens_to_ids("<image>"),
        vision_feature_select_strategy="default",
        vision_feature_layer=-2,
        projector_hidden_act="gelu",
    )
    processor = LlavaProcessor(
        image_processor=clip_image_processor(image_size),
        tokenizer=tok,
        patch_size=patch_size,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=LLAVA_TEMPLATE,
    )
    torch.manual_seed(SEED)
    model = LlavaForConditionalGeneration(config).eval()
    _settle_generation_config(model, tok)
    return _save(model, processor, Path(path))


def build_tiny_llava_next(
    path: Path, *, image_size: int = 32, patch_size: int = 8, num_layers: int = 3
) -> Path:
    """LLaVA-NeXT (v1.6-mistral layout): base view + anyres tiles + newline tokens, GQA text."""
    from transformers import (
        LlavaNextConfig,
        LlavaNextForConditionalGeneration,
        LlavaNextImageProcessor,
        LlavaNextProcessor,
    )

    tok = llava_tokenizer()
    s = image_size
    pinpoints = [[s, 2 * s], [2 * s, s], [2 * s, 2 * s]]
    config = LlavaNextConfig(
        vision_config=_clip_vision(image_size, patch_size),
        text_config=_llama_text(
            len(tok), tok, "mistral", num_hidden_layers=num_layers, num_key_value_heads=2
        ),
        image_token_id=tok.convert_tokens_to_ids("<image>"),
        image_grid_pinpoints=pinpoints,
        vision_feature_select_strategy="default",
        vision_feature_layer=-2,
    )
    image_processor = LlavaNextImageProcessor(
        size={"shortest_edge": s},
        crop_size={"height": s, "width": s},
        image_grid_pinpoints=pinpoints,
    )
    processor = LlavaNextProcessor(
        image_processor=image_processor,
        tokenizer=tok,
        patch_size=patch_size,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=LLAVA_NEXT_TEMPLATE,
    )
    torch.manual_seed(SEED)
    model = LlavaNextForConditionalGeneration(config).eval()
    _settle_generation_config(model, tok)
    return _save(model, processor, Path(path))


def build_tiny_vipllava(path: Path, *, image_size: int = 32, patch_size: int = 8) -> Path:
    """A LLaVA relative with no dedicated adapter (VipLlava): exercises the generic adapter."""
    from transformers import (
        LlavaProcessor,
        VipLlavaConfig,
        VipLlavaForConditionalGeneration,
    )

    tok = llava_tokenizer()
    config = VipLlavaConfig(
        vision_config=_clip_vision(image_size, patch_size),
        text_config=_llama_text(len(tok), tok, num_hidden_layers=2),
        image_token_id=tok.convert_tokens_to_ids("<image>"),
        vision_feature_layers=[-2, -1],
    )
    processor = LlavaProcessor(
        image_processor=clip_image_processor(image_size),
        tokenizer=tok,
        patch_size=patch_size,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=LLAVA_TEMPLATE,
    )
    torch.manual_seed(SEED)
    model = VipLlavaForConditionalGeneration(config).eval()
    _settle_generation_config(model, tok)
    return _save(model, processor, Path(path))


def _qwen_tokenizer() -> PreTrainedTokenizerFast:
    return make_word_tokenizer(
        QWEN_SPECIALS, unk="<unk>", pad="<|endoftext|>", eos="<|im_end|>",
        extra_words=["im_start", "im_end"], cls=qwen_tokenizer_class(),
    )  # fmt: skip


def _qwen_text(tok: PreTrainedTokenizerFast, num_layers: int) -> dict[str, Any]:
    # head_dim 16 -> 8 rotary frequencies split over (t, h, w), like [16, 24, 24] at 128.
    return {
        "vocab_size": len(tok),
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": num_layers,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 512,
        **rope_kwargs(10000.0, mrope_section=[2, 3, 3]),
        "bos_token_id": None,
        "eos_token_id": tok.eos_token_id,
        "pad_token_id": tok.pad_token_id,
    }


def _qwen_ids(tok: PreTrainedTokenizerFast) -> dict[str, int]:
    ids = tok.convert_tokens_to_ids
    return {
        "image_token_id": ids("<|image_pad|>"),
        "video_token_id": ids("<|video_pad|>"),
        "vision_start_token_id": ids("<|vision_start|>"),
        "vision_end_token_id": ids("<|vision_end|>"),
    }


def _qwen_processors(tok: PreTrainedTokenizerFast, patch_size: int, processor_cls: Any) -> Any:
    from transformers import Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    factor = patch_size * 2
    sizes = {
        "patch_size": patch_size,
        "merge_size": 2,
        "temporal_patch_size": 2,
        **qwen_pixel_kwargs((2 * factor) ** 2, (6 * factor) ** 2),
    }
    return processor_cls(
        image_processor=Qwen2VLImageProcessor(**sizes),
        video_processor=Qwen2VLVideoProcessor(**sizes),
        tokenizer=tok,
        chat_template=QWEN2_VL_TEMPLATE,
    )


def build_tiny_qwen2_vl(path: Path, *, patch_size: int = 4, num_layers: int = 3) -> Path:
    """Qwen2-VL: dynamic-resolution grid (image_grid_thw), 2x2 merge, M-RoPE, GQA text."""
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration, Qwen2VLProcessor

    tok = _qwen_tokenizer()
    config = Qwen2VLConfig(
        text_config=_qwen_text(tok, num_layers),
        vision_config={
            "depth": 2,
            "embed_dim": 32,
            "hidden_size": 64,
            "num_heads": 2,
            "mlp_ratio": 2,
            "patch_size": patch_size,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
        **_qwen_ids(tok),
    )
    processor = _qwen_processors(tok, patch_size, Qwen2VLProcessor)
    torch.manual_seed(SEED)
    model = Qwen2VLForConditionalGeneration(config).eval()
    _settle_generation_config(model, tok)
    return _save(model, processor, Path(path))


def build_tiny_qwen2_5_vl(path: Path, *, patch_size: int = 4, num_layers: int = 3) -> Path:
    """Qwen2.5-VL: as Qwen2-VL plus windowed vision attention (one full-attention block)."""
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
    )

    tok = _qwen_tokenizer()
    config = Qwen2_5_VLConfig(
        text_config=_qwen_text(tok, num_layers),
        vision_config={
            "depth": 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "out_hidden_size": 64,
            "patch_size": patch_size,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": patch_size * 2 * 2,
            "fullatt_block_indexes": [1],
        },
        **_qwen_ids(tok),
    )
    processor = _qwen_processors(tok, patch_size, Qwen2_5_VLProcessor)
    torch.manual_seed(SEED)
    model = Qwen2_5_VLForConditionalGeneration(config).eval()
    _settle_generation_config(model, tok)
    return _save(model, processor, Path(path))


#: builder per adapter family, for parametrised tests
BUILDERS = {
    "llava": build_tiny_llava,
    "llava-next": build_tiny_llava_next,
    "qwen2-vl": build_tiny_qwen2_vl,
    "qwen2.5-vl": build_tiny_qwen2_5_vl,
    "auto": build_tiny_vipllava,
}


def _settle_generation_config(model: Any, tok: PreTrainedTokenizerFast) -> None:
    """Greedy by default and stop at EOS, like a released checkpoint's generation_config."""
    gen = model.generation_config
    gen.eos_token_id = tok.eos_token_id
    gen.pad_token_id = tok.pad_token_id
    if tok.bos_token_id is not None:
        gen.bos_token_id = tok.bos_token_id
    gen.do_sample = False


def tiny_profile(path: Path | str, family: str, attn: str = "sdpa", **overrides: Any):
    """A `Profile` for a tiny checkpoint: float32 on CPU, no device_map."""
    from cliffscope.profiles import Profile

    fields: dict[str, Any] = {
        "name": f"tiny-{family.replace('.', '-')}",
        "family": family,
        "model": str(path),
        "dtype": "float32",
        "device_map": None,
        "attn_implementation": attn,
        "batch_size": 2,
        "max_new_tokens": 4,
    }
    fields.update(overrides)
    return Profile(**fields)

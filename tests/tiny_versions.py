"""The transformers 4.57 / 5.x differences the tiny family builders need, in one place.

transformers 5 takes rotary settings as one `rope_parameters` dict (one per layer type where a
model has several); 4.x takes `rope_theta` plus `rope_scaling` (Gemma 3: `rope_theta` for global
layers, `rope_local_base_freq` for sliding ones) and silently ignores `rope_parameters`. 4.x Qwen
processors insist on a `Qwen2TokenizerFast` instance; 5.x accepts any tokenizer (and re-reading
a saved `Qwen2Tokenizer` there rebuilds it as BPE, so the generic class stays). 4.57's
`Qwen2VLImageProcessor` replaces a valid `size` by its defaults and only honours `min_pixels` /
`max_pixels`.
"""

from __future__ import annotations

from typing import Any

import transformers
from transformers import PreTrainedTokenizerFast

V5 = int(transformers.__version__.split(".")[0]) >= 5


def qwen_tokenizer_class() -> type[PreTrainedTokenizerFast]:
    """The tokenizer class a Qwen-family processor accepts in this transformers release."""
    return PreTrainedTokenizerFast if V5 else transformers.Qwen2TokenizerFast


def qwen_pixel_kwargs(min_pixels: int, max_pixels: int) -> dict[str, Any]:
    """Image/video-processor kwargs bounding a Qwen image to [min_pixels, max_pixels]."""
    size = {"size": {"shortest_edge": min_pixels, "longest_edge": max_pixels}}
    return size if V5 else {**size, "min_pixels": min_pixels, "max_pixels": max_pixels}


def rope_kwargs(theta: float, *, local_theta: float | None = None, **extra: Any) -> dict:
    """Config kwargs for a rotary base `theta` (and `local_theta` for sliding layers); `extra`
    goes into the rope dict (M-RoPE's `mrope_section` ...)."""
    if V5:
        params = {"rope_type": "default", "rope_theta": theta, **extra}
        if local_theta is None:
            return {"rope_parameters": params}
        local = {"rope_type": "default", "rope_theta": local_theta}
        return {"rope_parameters": {"full_attention": params, "sliding_attention": local}}
    out: dict[str, Any] = {"rope_theta": theta}
    if extra:
        out["rope_scaling"] = {"rope_type": "default", **extra}
    if local_theta is not None:
        out["rope_local_base_freq"] = local_theta
    return out

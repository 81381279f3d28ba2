"""Everything that differs between the transformers releases cliffscope supports, in one place.

Engines and adapters call these functions instead of reaching into transformers themselves, so a
new release breaks (at most) this module, and the conformance suite run at both ends of the
supported range (`pyproject.toml`, `.ci/run`) says where. Each branch names the releases that
need it. The rest of cliffscope uses public transformers APIs only: `AttentionInterface`,
`AttentionMaskInterface`, `set_attn_implementation`, module hooks and the Cache API.

Differences handled here:

- Gemma 3's image blocks in sliding layers (`blocks_escape_windows`).
- A tensor `logits_to_keep` (4.57's Qwen2-VL ignores it: `kept_logits`).
- What a decoder layer returns: a tensor in 5.x, a tuple in some 4.57 layers.
- The cache keyword of decoder layers and models: `past_key_values` up to 5.23, `cache` from 5.24
  (the old name is still accepted there, with a deprecation warning, until 5.40).
- Processor outputs a model does not take: tokenizers of 4.57 return `token_type_ids` that the
  VLM forward (and generate's kwargs check) rejects.
- Qwen-VL `get_rope_index`: 5.x takes `mm_token_type_ids`, 4.57 does not (both accept
  (4, B, S) position ids with the text row first).

For building configs and processors (the tiny conformance checkpoints, `cliffscope.conformance`):

- rotary settings: 5.x takes one `rope_parameters` dict (one per layer type where a model has
  several); 4.x takes `rope_theta` plus `rope_scaling` (Gemma 3: `rope_theta` for global layers,
  `rope_local_base_freq` for sliding ones) and silently ignores `rope_parameters`;
- 4.x Qwen processors insist on a `Qwen2TokenizerFast` instance (5.x accepts any tokenizer);
- 4.57's `Qwen2VLImageProcessor` replaces a valid `size` by its defaults and honours only
  `min_pixels` / `max_pixels`.
"""

from __future__ import annotations

import inspect
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from packaging.version import Version

if TYPE_CHECKING:
    import torch

#: The cache keyword names, newest first.
CACHE_KWARGS: tuple[str, ...] = ("cache", "past_key_values")


@lru_cache(maxsize=1)
def transformers_version() -> Version:
    import transformers

    return Version(transformers.__version__)


@lru_cache(maxsize=64)
def _cache_kwarg_of(forward: Any) -> str:
    params = inspect.signature(forward).parameters
    for name in CACHE_KWARGS:
        if name in params:
            return name
    return "past_key_values"


def cache_kwarg(module: Any) -> str:
    """The keyword a decoder layer (or model) takes its KV cache under ("cache" from 5.24)."""
    return _cache_kwarg_of(type(module).forward)


def attention_implementation(config: Any) -> str:
    """The kernel name a (sub-)config runs. transformers has no public getter: every release
    reads and writes `config._attn_implementation` (set it with `set_attn_implementation`)."""
    return str(config._attn_implementation)


def layer_cache(kwargs: dict[str, Any]) -> Any:
    """The cache a decoder layer was called with (None when uncached), under either name."""
    for name in CACHE_KWARGS:
        cache = kwargs.get(name)
        if cache is not None:
            return cache
    return None


def with_layer_cache(module: Any, kwargs: dict[str, Any], cache: Any) -> dict[str, Any]:
    """`kwargs` for calling `module` with `cache` as its KV cache (under the name it takes)."""
    out = {k: v for k, v in kwargs.items() if k not in CACHE_KWARGS}
    out[cache_kwarg(module)] = cache
    return out


def kept_logits(logits: Any, keep: list[int]) -> Any:
    """Logits at positions `keep` from a forward given `logits_to_keep=tensor(keep)`.

    Most models slice for us; 4.57's Qwen2-VL ignores a tensor `logits_to_keep` and returns
    every position's logits, which are then indexed here.
    """
    return logits if logits.shape[1] == len(keep) else logits[:, keep]


def blocks_escape_windows() -> bool:
    """Gemma 3's both-ways image blocks in sliding layers: 5.x masks AND(window, OR(causal,
    block)); 4.57 masks OR(AND(causal, window), block), so an image token sees its whole block."""
    return transformers_version() < Version("5.0.0")


def layer_output(output: Any) -> Any:
    """The hidden states a decoder layer returned: a tensor in 5.x, a 1-tuple in some 4.57
    layers (Qwen2-VL's)."""
    return output[0] if isinstance(output, tuple) else output


def new_dynamic_cache() -> Any:
    """A DynamicCache whose every layer keeps all positions.

    Built without a config on purpose: with one, sliding-window layers keep only the last
    window of keys, and the engines need the whole prompt of every layer (windows are applied
    by the mask, as the model's own mask does).
    """
    from transformers import DynamicCache

    return DynamicCache()


def output_cache(output: Any) -> Any:
    """The cache a model output carries (`past_key_values`, `cache` from 5.24)."""
    for name in CACHE_KWARGS:
        cache = getattr(output, name, None)
        if cache is not None:
            return cache
    return None


def cache_layer_kv(cache: Any, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(keys, values) stored for one layer, each (B, kv_heads, T, head_dim)."""
    entry = cache.layers[layer]
    return entry.keys, entry.values


def cache_length(cache: Any, layer: int) -> int:
    """Positions cached for `layer` (0 for an empty or missing cache)."""
    if cache is None:
        return 0
    return int(cache.get_seq_length(layer))


@lru_cache(maxsize=64)
def _forward_params(forward: Any) -> tuple[frozenset[str], bool]:
    params = inspect.signature(forward).parameters
    var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    return frozenset(params), var_kw


def model_inputs(model: Any, encoded: dict[str, Any]) -> dict[str, Any]:
    """Processor outputs the model's forward accepts (4.57 tokenizers add `token_type_ids`).

    A forward with `**kwargs` accepts anything by signature but still rejects keys it never
    reads in `generate`; `token_type_ids` is the only such key seen, and it is dropped unless the
    forward names it (Gemma 3 does: it marks image tokens with it).
    """
    named, var_kw = _forward_params(type(model).forward)
    return {k: v for k, v in encoded.items() if k in named or (var_kw and k != "token_type_ids")}


def rope_index(model: Any, inputs: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """(M-RoPE position ids (3, B, S), rope deltas (B, 1)) of a Qwen-VL family model."""
    inner = model.model
    params = inspect.signature(inner.get_rope_index).parameters
    kwargs = {
        key: inputs.get(key)
        for key in ("image_grid_thw", "video_grid_thw", "attention_mask", "mm_token_type_ids")
        if key in params
    }
    return inner.get_rope_index(inputs["input_ids"], **kwargs)


# ---- building configs and processors -----------------------------------------------------------


def _v5() -> bool:
    return transformers_version() >= Version("5.0.0")


def qwen_tokenizer_class() -> Any:
    """The tokenizer class a Qwen-family processor accepts in this transformers release."""
    import transformers
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast if _v5() else transformers.Qwen2TokenizerFast


def qwen_pixel_kwargs(min_pixels: int, max_pixels: int) -> dict[str, Any]:
    """Image/video-processor kwargs bounding a Qwen image to [min_pixels, max_pixels]."""
    size = {"size": {"shortest_edge": min_pixels, "longest_edge": max_pixels}}
    return size if _v5() else {**size, "min_pixels": min_pixels, "max_pixels": max_pixels}


def rope_kwargs(theta: float, *, local_theta: float | None = None, **extra: Any) -> dict:
    """Config kwargs for a rotary base `theta` (and `local_theta` for sliding layers); `extra`
    goes into the rope dict (M-RoPE's `mrope_section` ...)."""
    if _v5():
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

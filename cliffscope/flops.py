"""Theoretical prefill FLOPs and KV-cache saved by truncating image tokens from layer k.

Counted from the decoder's config only (pure Python, no torch), per prompt:

- per token and layer: q/k/v/o projections 2*D*(H*d + 2*Hkv*d) + 2*H*d*D, and the gated MLP
  3 * 2*D*I (up, gate, down);
- per layer, causal attention: n(n+1)/2 query-key pairs, each 2*H*d for the scores plus 2*H*d
  for mixing the values.

Truncation at k runs layers >= k on the kept tokens only. `flops_saved` is the saved share of the
decoder's prefill (vision tower and LM head excluded, which truncation does not touch);
`kv_saved` is the share of cached key/value entries that are never stored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DecoderDims:
    num_layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int

    @classmethod
    def from_config(cls, config: Any) -> DecoderDims:
        """From a decoder (text) config: Llama/Mistral/Qwen2 field names."""
        heads = int(config.num_attention_heads)
        return cls(
            num_layers=int(config.num_hidden_layers),
            hidden=int(config.hidden_size),
            intermediate=int(config.intermediate_size),
            heads=heads,
            kv_heads=int(getattr(config, "num_key_value_heads", None) or heads),
            head_dim=int(getattr(config, "head_dim", None) or config.hidden_size // heads),
        )

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def layer_flops(dims: DecoderDims, n_tokens: float) -> float:
    """FLOPs of one decoder layer's prefill over `n_tokens` causal positions."""
    d, h, hkv = dims.hidden, dims.heads * dims.head_dim, dims.kv_heads * dims.head_dim
    per_token = 2 * d * (h + 2 * hkv) + 2 * h * d + 3 * 2 * d * dims.intermediate
    pairs = n_tokens * (n_tokens + 1) / 2
    return per_token * n_tokens + pairs * 4 * h


def savings(
    dims: DecoderDims, n_image: float, n_text: float, k: int, n_kept_image: float = 0.0
) -> tuple[float, float]:
    """(flops_saved, kv_saved) as fractions of the untruncated prefill, for one prompt."""
    layers = dims.num_layers
    k = max(0, min(int(k), layers))
    full_len = n_image + n_text
    if full_len <= 0:
        return 0.0, 0.0
    full = layers * layer_flops(dims, full_len)
    truncated = k * layer_flops(dims, full_len) + (layers - k) * layer_flops(
        dims, n_text + n_kept_image
    )
    removed = (layers - k) * (n_image - n_kept_image)
    return 1.0 - truncated / full, removed / (layers * full_len)


def mean_savings(
    dims: DecoderDims,
    counts: list[tuple[int, int]],
    k: int,
    keep_ratio: float | None = None,
    kept: Callable[[int], int] | None = None,
) -> tuple[float, float]:
    """Mean (flops_saved, kv_saved) over prompts given as (n_image, n_text) pairs.

    `kept(n_image)` is how many image tokens stay (a token strategy's `kept`); `keep_ratio`
    is the FastV shortcut round(R * n).
    """
    if not counts:
        return 0.0, 0.0
    if kept is None:
        ratio = keep_ratio or 0.0

        def kept(n: int) -> int:
            return int(ratio * n + 0.5)

    flops = kv = 0.0
    for n_image, n_text in counts:
        f, c = savings(dims, n_image, n_text, k, kept(n_image))
        flops += f
        kv += c
    return flops / len(counts), kv / len(counts)

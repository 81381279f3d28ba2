"""Reading and rewriting what a decoder layer is called with, whatever the family.

Engines hook decoder layers (forward pre-hooks with kwargs, a public torch API) and must change
what a layer sees when image positions leave the sequence. Families differ in what they pass:
one (cos, sin) pair for all layers (Llama, Qwen) or one per layer type (Gemma 3's sliding and
global layers have different rope theta), text position ids of shape (B, S) or none,
`cache_position` (4.57), the cache under `past_key_values` or `cache` (5.24). So nothing here
names a family: every layer's OWN arguments are rewritten by the same rule —

- the hidden states (first positional argument, or `hidden_states`) are replaced;
- every per-position argument is gathered at the kept positions: the tensors of
  `position_embeddings*` (4.57's Gemma 3 passes `_global` and `_local` ones) and
  `position_ids` along their sequence axis, `cache_position` renumbered;
- the attention mask is replaced by one the engine builds (`masks.layer_mask`);
- the cache goes under whichever name the layer takes (`compat.with_layer_cache`);
- anything else passes through untouched.
"""

from __future__ import annotations

from typing import Any

import torch

from cliffscope.models import compat


def hidden_of(args: tuple, kwargs: dict[str, Any]) -> torch.Tensor:
    """The hidden states a layer was called with."""
    return args[0] if args else kwargs["hidden_states"]


def with_hidden(args: tuple, kwargs: dict[str, Any], hidden: torch.Tensor) -> tuple[tuple, dict]:
    """(args, kwargs) with the hidden states replaced."""
    if args:
        return (hidden, *args[1:]), kwargs
    return args, {**kwargs, "hidden_states": hidden}


def take(x: torch.Tensor, index: torch.Tensor, dim: int) -> torch.Tensor:
    """x gathered at `index` (B, T) along sequence axis `dim`; a batch axis of 1 is broadcast.

    The batch axis is the one before `dim` (cos/sin (B, S, d): dim 1; position ids (B, S):
    dim 1; M-RoPE position ids (n, B, S): dim 2, batch axis 1). A tensor without a batch axis
    ((S, d), dim 0) gets one. With N = n * B index rows (a sweep's branches, branch-major),
    row i reads batch row i % B.
    """
    if dim == 0:
        x, dim = x.unsqueeze(0), 1
    batch_dim = dim - 1
    size, rows = x.shape[batch_dim], index.shape[0]
    if size == 1 and rows > 1:
        shape = list(x.shape)
        shape[batch_dim] = rows
        x = x.expand(*shape)
    elif size != rows:  # branch-major rows of a sweep: row i belongs to batch row i % size
        repeats = [1] * x.dim()
        repeats[batch_dim] = rows // size
        x = x.repeat(*repeats)
    view = [1] * x.dim()
    view[batch_dim], view[dim] = index.shape[0], index.shape[1]
    shape = list(x.shape)
    shape[dim] = index.shape[1]
    return torch.gather(x, dim, index.reshape(view).expand(shape))


def _sequence_dim(x: torch.Tensor, length: int, prefer_last: bool) -> int | None:
    dims = [d for d in range(x.dim()) if x.shape[d] == length]
    if not dims:
        return None
    return dims[-1] if prefer_last else dims[0]


def take_rotary(position_embeddings: Any, index: torch.Tensor, length: int) -> Any:
    """(cos, sin) — or any tuple of per-position tensors — gathered at the kept positions."""
    if isinstance(position_embeddings, torch.Tensor):
        return _take_rotary_tensor(position_embeddings, index, length)
    if isinstance(position_embeddings, (tuple, list)):
        return type(position_embeddings)(
            _take_rotary_tensor(t, index, length) for t in position_embeddings
        )
    return position_embeddings


def _take_rotary_tensor(x: torch.Tensor, index: torch.Tensor, length: int) -> torch.Tensor:
    # (B, S, d) or (S, d): the sequence axis is the one before the feature axis.
    dim = x.dim() - 2
    if dim < 0 or x.shape[dim] != length:
        found = _sequence_dim(x, length, prefer_last=False)
        if found is None:
            return x
        dim = found
    return take(x, index, dim)


def take_position_ids(position_ids: Any, index: torch.Tensor, length: int) -> Any:
    """Text (B, S) or M-RoPE (n, B, S) position ids at the kept positions."""
    if not isinstance(position_ids, torch.Tensor) or position_ids.shape[-1] != length:
        return position_ids
    return take(position_ids, index, position_ids.dim() - 1)


def gathered_kwargs(
    kwargs: dict[str, Any], index: torch.Tensor, length: int, past: int = 0
) -> dict[str, Any]:
    """A layer's per-position arguments at the kept positions `index` (B, T) of `length`."""
    out: dict[str, Any] = {}
    for key, value in kwargs.items():  # `position_embeddings`; 4.57 Gemma 3: `_global`, `_local`
        if key.startswith("position_embeddings"):
            out[key] = take_rotary(value, index, length)
    if "position_ids" in kwargs:
        out["position_ids"] = take_position_ids(kwargs["position_ids"], index, length)
    cache_position = kwargs.get("cache_position")
    if isinstance(cache_position, torch.Tensor):
        out["cache_position"] = torch.arange(
            past, past + index.shape[1], device=cache_position.device, dtype=cache_position.dtype
        )
    return out


def layer_call(
    layer: torch.nn.Module, kwargs: dict[str, Any], cache: Any, **updates: Any
) -> dict[str, Any]:
    """Keyword arguments for calling `layer` directly: its captured ones, updated, with `cache`."""
    merged = {**kwargs, **updates}
    merged.pop("hidden_states", None)
    return compat.with_layer_cache(layer, merged, cache)

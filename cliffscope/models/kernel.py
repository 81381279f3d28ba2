"""The attention kernel cliffscope puts into every decoder: the model's own kernel, plus taps.

Fast kernels (sdpa, flash-attention) never return attention weights, and engines need more than
weights: attention-flow capture reads the post-RoPE query and key of every layer, FastV-style
token strategies rank image tokens by one layer's last-row attention, knockout blocks chosen
(query, key) pairs, and the branch decoder of a shared sweep attends every branch to its own
prefix. All of that goes through one function registered with `transformers.AttentionInterface`
(a public API) that wraps the profile's kernel (`sdpa`, `eager`, `flash_attention_2` …):

- it is installed once, when an adapter is made (`install`), for the decoder only (the dict form
  of `set_attn_implementation`), with the base kernel's mask function registered under the same
  name through `AttentionMaskInterface`, so the model builds exactly the masks it built before;
- with no tap active it calls the base kernel with the same arguments: outputs are bit-identical
  to the untouched model;
- taps are active only inside `tapping(...)`: a context variable, so concurrent threads never
  see each other's taps. A tap sees (module, query, key, mask, kwargs) of every decoder layer
  call and may return a replacement mask (knockout); it must not change query or key.
- a call whose `key` is not a tensor but an object with an `attend` method (the branch decoder's
  per-layer view of its prefixes, `engines.branch_decode.LayerView`) is answered by that object.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Protocol

import torch

if TYPE_CHECKING:
    from cliffscope.models.base import ModelAdapter

PREFIX = "cliffscope_"


class Tap(Protocol):
    """Something that looks at (and may re-mask) each decoder layer's attention call."""

    def __call__(
        self,
        module: torch.nn.Module,
        query: torch.Tensor,
        key: torch.Tensor,
        mask: Any,
        kwargs: dict[str, Any],
    ) -> Any:
        """Return a replacement attention mask, or None to keep the model's."""


_TAPS: ContextVar[tuple[Tap, ...]] = ContextVar("cliffscope_taps", default=())


@contextlib.contextmanager
def tapping(*taps: Tap) -> Iterator[None]:
    """Activate `taps` for every decoder attention call made inside the block."""
    token = _TAPS.set(_TAPS.get() + taps)
    try:
        yield
    finally:
        _TAPS.reset(token)


def base_function(base: str, module: torch.nn.Module) -> Any:
    """The kernel being wrapped; `eager` lives in each model's own modeling file."""
    if base == "eager":
        return sys.modules[type(module).__module__].eager_attention_forward
    from transformers import AttentionInterface

    return AttentionInterface()[base]


def kernel_name(base: str) -> str:
    """Register (idempotently) the wrapper around `base`; returns the name it is registered as."""
    from transformers import AttentionInterface, AttentionMaskInterface

    base = base.removeprefix(PREFIX)
    name = f"{PREFIX}{base}"
    masks = AttentionMaskInterface()
    mask_function = masks[base] if base in masks else masks["sdpa"]

    def cliffscope_attention(
        module: torch.nn.Module,
        query: torch.Tensor,
        key: Any,
        value: Any,
        attention_mask: Any,
        **kwargs: Any,
    ) -> Any:
        if not isinstance(key, torch.Tensor) and hasattr(key, "attend"):
            return key.attend(module, query, **kwargs)
        for tap in _TAPS.get():
            replaced = tap(module, query, key, attention_mask, kwargs)
            if replaced is not None:
                attention_mask = replaced
        return base_function(base, module)(module, query, key, value, attention_mask, **kwargs)

    AttentionInterface.register(name, cliffscope_attention)
    AttentionMaskInterface.register(name, mask_function)
    return name


def install(adapter: ModelAdapter) -> str:
    """Put the wrapper around the decoder's current kernel; returns the base kernel's name."""
    current = adapter.text_attention()
    base = current.removeprefix(PREFIX) if current else "sdpa"
    if current != kernel_name(base):
        adapter.set_text_attention(kernel_name(base))
    return base

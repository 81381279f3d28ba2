"""Greedy decoding of every truncation branch of a sweep as one batch.

After the shared prefill, branch k (truncated at k) has, per layer j, either the full prompt's
keys and values (j < k: identical for every such branch, so stored once) or text-only ones
recomputed for that branch (j >= k). Rows are laid out branch-major with branches in ascending
k and the untruncated baseline last, so at layer j the rows of branches with k <= j are a
prefix of the batch. A decode step runs the whole model once over all rows; a registered
attention function then attends each row to its own prefix:

- text rows: their branch's text-only prefix (stored per row),
- full rows: the one shared full prefix, broadcast over branches without copying,
- plus every row's own generated tokens (a preallocated buffer).

The model code (embeddings, rotary positions, norms, projections, MLP, head) is the family's
own; only the attention kernel and the cache are swapped in, inside `branch_attention()`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

ATTENTION_NAME = "cliffscope_branches"


@dataclass
class Prefix:
    """Keys/values (rows, kv_heads, P, head_dim) a group of rows attends to, and their validity."""

    keys: torch.Tensor
    values: torch.Tensor
    valid: torch.Tensor  # (B, P) boolean, the same for every branch


@dataclass
class LayerView:
    """What the attention function gets instead of a key tensor for one layer and step."""

    text: Prefix | None
    full: Prefix
    n_text_rows: int
    new_keys: torch.Tensor
    new_values: torch.Tensor


class BranchCache:
    """Per-layer prefixes plus each row's generated keys/values, filled step by step.

    `text[j]` holds the text-only prefix of the first `n_text_rows[j]` rows (None when no
    branch is truncated at or before j); `full[j]` the untruncated prompt's (B rows).
    """

    is_compileable = False

    def __init__(
        self,
        text: list[Prefix | None],
        full: list[Prefix],
        n_text_rows: list[int],
        n_rows: int,
        max_steps: int,
    ) -> None:
        self.text, self.full, self.n_text_rows = text, full, n_text_rows
        self.n_rows, self.max_steps = n_rows, max_steps
        self.step = 0
        self._keys: list[torch.Tensor | None] = [None] * len(full)
        self._values: list[torch.Tensor | None] = [None] * len(full)

    def update(
        self, key: torch.Tensor, value: torch.Tensor, layer_idx: int, *args: Any, **kwargs: Any
    ) -> tuple[LayerView, None]:
        if self._keys[layer_idx] is None:
            shape = (self.n_rows, key.shape[1], self.max_steps, key.shape[3])
            self._keys[layer_idx] = key.new_empty(shape)
            self._values[layer_idx] = value.new_empty(shape)
        keys, values = self._keys[layer_idx], self._values[layer_idx]
        keys[:, :, self.step] = key[:, :, 0]
        values[:, :, self.step] = value[:, :, 0]
        view = LayerView(
            text=self.text[layer_idx],
            full=self.full[layer_idx],
            n_text_rows=self.n_text_rows[layer_idx],
            new_keys=keys[:, :, : self.step + 1],
            new_values=values[:, :, : self.step + 1],
        )
        return view, None

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return int(self.full[layer_idx].keys.shape[2]) + self.step


def _softmax_mix(
    prefix_scores: torch.Tensor,
    new_scores: torch.Tensor,
    valid: torch.Tensor,
    scaling: float,
    dtype: torch.dtype,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax over [prefix keys, own generated keys]; returns the two weight blocks."""
    n_prefix = prefix_scores.shape[-1]
    visible = torch.cat([valid, valid.new_ones(*valid.shape[:-1], new_scores.shape[-1])], -1)
    scores = torch.cat([prefix_scores, new_scores], dim=-1) * scaling
    scores = scores.masked_fill(~visible, float("-inf"))
    weights = scores.softmax(dim=-1, dtype=torch.float32).to(dtype)
    return weights[..., :n_prefix], weights[..., n_prefix:]


def _text_rows(q: torch.Tensor, view: LayerView, scaling: float) -> torch.Tensor:
    """Rows with their own (text-only) prefix: q (n, kv, g, d) -> (n, kv, g, d)."""
    text, n = view.text, q.shape[0]
    valid = text.valid.repeat(n // text.valid.shape[0], 1)[:, None, None, :]
    new_k, new_v = view.new_keys[:n], view.new_values[:n]
    w_prefix, w_new = _softmax_mix(
        q @ text.keys.transpose(-1, -2), q @ new_k.transpose(-1, -2), valid, scaling, q.dtype
    )
    return w_prefix @ text.values + w_new @ new_v


def _full_rows(q: torch.Tensor, view: LayerView, scaling: float) -> torch.Tensor:
    """Rows sharing the untruncated prefix (B rows of it): q (nb*B, kv, g, d) -> same shape.

    The branches become extra query rows of one GEMM per (row, kv head) against the shared
    prefix, (B, kv, nb*g, d) @ (B, kv, d, P), so the prefix is never copied per branch.
    """
    full = view.full
    batch = full.valid.shape[0]
    rows, kv_heads, group, dim = q.shape
    n_branch = rows // batch
    q5 = q.reshape(n_branch, batch, kv_heads, group, dim).permute(1, 2, 0, 3, 4)
    n_new = view.new_keys.shape[2]
    new_k = view.new_keys[-rows:].reshape(n_branch, batch, kv_heads, n_new, dim)
    new_v = view.new_values[-rows:].reshape(n_branch, batch, kv_heads, n_new, dim)
    new_k, new_v = new_k.permute(1, 2, 0, 3, 4), new_v.permute(1, 2, 0, 3, 4)
    prefix_scores = q5.reshape(batch, kv_heads, n_branch * group, dim) @ full.keys.transpose(-1, -2)
    prefix_scores = prefix_scores.view(batch, kv_heads, n_branch, group, -1)
    valid = full.valid[:, None, None, None, :]
    w_prefix, w_new = _softmax_mix(
        prefix_scores, q5 @ new_k.transpose(-1, -2), valid, scaling, q.dtype
    )
    mixed = w_prefix.reshape(batch, kv_heads, n_branch * group, -1) @ full.values
    out = mixed.view(batch, kv_heads, n_branch, group, dim) + w_new @ new_v
    return out.permute(2, 0, 1, 3, 4).reshape(rows, kv_heads, group, dim)


def branch_attention_forward(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: LayerView,
    value: None,
    attention_mask: Any,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """One decode step: query (N, H, 1, d) -> output (N, 1, H, d), as HF kernels return it."""
    rows, heads, q_len, dim = query.shape
    if q_len != 1:
        raise ValueError("branch attention decodes one token per step")
    kv_heads = key.new_keys.shape[1]
    scaling = module.scaling if scaling is None else scaling
    # query heads h = kv * group + i share kv head `kv` (as repeat_kv lays them out)
    q = query.reshape(rows, kv_heads, heads // kv_heads, dim)
    n_text = key.n_text_rows
    parts = []
    if n_text:
        parts.append(_text_rows(q[:n_text], key, scaling))
    if rows > n_text:
        parts.append(_full_rows(q[n_text:], key, scaling))
    out = torch.cat(parts) if len(parts) > 1 else parts[0]
    return out.reshape(rows, 1, heads, dim), None


@contextmanager
def branch_attention(configs: list[Any]) -> Iterator[None]:
    """Route the decoder's attention through `branch_attention_forward` while inside."""
    from transformers import AttentionInterface

    AttentionInterface.register(ATTENTION_NAME, branch_attention_forward)
    saved = [(cfg, cfg._attn_implementation) for cfg in configs]
    try:
        for cfg, _ in saved:
            cfg._attn_implementation = ATTENTION_NAME
        yield
    finally:
        for cfg, impl in saved:
            cfg._attn_implementation = impl

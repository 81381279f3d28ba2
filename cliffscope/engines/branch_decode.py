"""Greedy decoding of every truncation branch of a sweep as one batch.

After the shared prefill, branch k (truncated at k) has, per layer j, either the full prompt's
keys and values (j < k: identical for every such branch, so stored once) or text-only ones
recomputed for that branch (j >= k). Rows are laid out branch-major with branches in ascending
k and the untruncated baseline last, so at layer j the rows of branches with k <= j are a
prefix of the batch. A decode step runs the whole model once over all rows; cliffscope's
attention kernel (`models.kernel`) hands each layer's call to the `LayerView` the cache returns
in place of a key tensor, which attends each row to its own prefix:

- text rows: their branch's text-only prefix (stored per row),
- full rows: the one shared full prefix, broadcast over branches without copying,
- plus every row's own generated tokens (a preallocated buffer),

with the layer's sliding window (if any) counted in original positions. The model code
(embeddings, rotary positions, norms, projections, MLP, head) is the family's own; only the
attention and the cache are cliffscope's. Every token is chosen by the adapter's decoding policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from cliffscope.models import compat

if TYPE_CHECKING:
    from cliffscope.models.base import ModelAdapter, PreparedBatch


@dataclass
class Prefix:
    """Keys/values (rows, kv_heads, P, head_dim) a group of rows attends to, and their validity.

    `valid` (B, P) is the same for every branch; `positions` (B, P) are the keys' original
    positions (None: 0..P-1), for sliding windows.
    """

    keys: torch.Tensor
    values: torch.Tensor
    valid: torch.Tensor
    positions: torch.Tensor | None = None


@dataclass
class LayerView:
    """What the attention kernel gets instead of a key tensor for one layer and step."""

    text: Prefix | None
    full: Prefix
    n_text_rows: int
    new_keys: torch.Tensor
    new_values: torch.Tensor
    window: int | None
    position: int  # original position of the token being decoded

    def attend(self, module: torch.nn.Module, query: torch.Tensor, **kwargs: Any) -> tuple:
        """query (N, H, 1, d) -> (output (N, 1, H, d), None), as transformers kernels return."""
        rows, heads, q_len, dim = query.shape
        if q_len != 1:
            raise ValueError("branch attention decodes one token per step")
        kv_heads = self.new_keys.shape[1]
        scaling = kwargs.get("scaling")
        scaling = dim**-0.5 if scaling is None else scaling  # what sdpa uses when none is passed
        # query heads h = kv * group + i share kv head `kv` (as repeat_kv lays them out)
        q = query.reshape(rows, kv_heads, heads // kv_heads, dim)
        softcap = kwargs.get("softcap")
        parts = []
        if self.n_text_rows:
            parts.append(_text_rows(q[: self.n_text_rows], self, scaling, softcap))
        if rows > self.n_text_rows:
            parts.append(_full_rows(q[self.n_text_rows :], self, scaling, softcap))
        out = torch.cat(parts) if len(parts) > 1 else parts[0]
        return out.reshape(rows, 1, heads, dim), None

    def visible(self, prefix: Prefix, n_rows: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(prefix keys (B|n, P), generated keys (S_new,)) visible to the current token."""
        valid = prefix.valid
        n_new = self.new_keys.shape[2]
        own = torch.ones(n_new, dtype=torch.bool, device=valid.device)
        if self.window is not None:
            positions = prefix.positions
            if positions is None:
                positions = torch.arange(valid.shape[1], device=valid.device).expand_as(valid)
            valid = valid & (self.position - positions < self.window)
            distance = torch.arange(n_new - 1, -1, -1, device=valid.device)
            own = distance < self.window
        return valid, own


class BranchCache:
    """Per-layer prefixes plus each row's generated keys/values, filled step by step.

    `text[j]` holds the text-only prefix of the first `n_text_rows[j]` rows (None when no
    branch is truncated at or before j); `full[j]` the untruncated prompt's (B rows).
    """

    is_compileable = False
    is_initialized = True  # 4.57's Gemma 3 asks before building its masks

    def __init__(
        self,
        text: list[Prefix | None],
        full: list[Prefix],
        n_text_rows: list[int],
        n_rows: int,
        max_steps: int,
        windows: list[int | None],
        start: int,
    ) -> None:
        self.text, self.full, self.n_text_rows = text, full, n_text_rows
        self.n_rows, self.max_steps, self.windows, self.start = n_rows, max_steps, windows, start
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
            window=self.windows[layer_idx],
            position=self.start + self.step,
        )
        return view, None

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return int(self.full[layer_idx].keys.shape[2]) + self.step


def _softmax_mix(
    prefix_scores: torch.Tensor,
    new_scores: torch.Tensor,
    valid: torch.Tensor,
    own: torch.Tensor,
    scaling: float,
    softcap: float | None,
    dtype: torch.dtype,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax over [prefix keys, own generated keys]; returns the two weight blocks."""
    n_prefix = prefix_scores.shape[-1]
    own = own.expand(*valid.shape[:-1], own.shape[-1])
    visible = torch.cat([valid, own], -1)
    scores = torch.cat([prefix_scores, new_scores], dim=-1) * scaling
    if softcap:
        scores = torch.tanh(scores / softcap) * softcap
    scores = scores.masked_fill(~visible, float("-inf"))
    weights = scores.softmax(dim=-1, dtype=torch.float32).to(dtype)
    return weights[..., :n_prefix], weights[..., n_prefix:]


def _text_rows(q: torch.Tensor, view: LayerView, scaling: float, softcap: Any) -> torch.Tensor:
    """Rows with their own (text-only) prefix: q (n, kv, g, d) -> (n, kv, g, d)."""
    text, n = view.text, q.shape[0]
    valid, own = view.visible(text, n)
    valid = valid.repeat(n // valid.shape[0], 1)[:, None, None, :]
    new_k, new_v = view.new_keys[:n], view.new_values[:n]
    w_prefix, w_new = _softmax_mix(
        q @ text.keys.transpose(-1, -2),
        q @ new_k.transpose(-1, -2),
        valid,
        own,
        scaling,
        softcap,
        q.dtype,
    )
    return w_prefix @ text.values + w_new @ new_v


def _full_rows(q: torch.Tensor, view: LayerView, scaling: float, softcap: Any) -> torch.Tensor:
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
    valid, own = view.visible(full, batch)
    w_prefix, w_new = _softmax_mix(
        prefix_scores,
        q5 @ new_k.transpose(-1, -2),
        valid[:, None, None, None, :],
        own,
        scaling,
        softcap,
        q.dtype,
    )
    mixed = w_prefix.reshape(batch, kv_heads, n_branch * group, -1) @ full.values
    out = mixed.view(batch, kv_heads, n_branch, group, dim) + w_new @ new_v
    return out.permute(2, 0, 1, 3, 4).reshape(rows, kv_heads, group, dim)


def decode_branches(
    adapter: ModelAdapter,
    batch: PreparedBatch,
    first_logits: torch.Tensor,
    full: list[Prefix],
    text: list[Prefix | None],
    n_text_rows: list[int],
    positions: torch.Tensor,
    max_new_tokens: int,
) -> list[list[int]]:
    """Greedy tokens (uncut) for all branch rows, decoded as one batch under the policy.

    `first_logits` (N, V): every row's logits at the last prompt position, branch-major.
    """
    policy = adapter.policy
    n_rows, size = first_logits.shape[0], len(batch)
    prompts = [
        row[mask.bool()].tolist()
        for row, mask in zip(batch.input_ids, batch.attention_mask, strict=True)
    ]
    answers: list[list[int]] = [[] for _ in range(n_rows)]

    def contexts() -> list[list[int]]:
        if not policy.conditional:
            return [[] for _ in range(n_rows)]
        return [prompts[r % size] + answers[r] for r in range(n_rows)]

    token = policy.choose(first_logits, contexts(), 0)
    stop = torch.tensor(policy.stop_ids, dtype=torch.long, device=token.device)
    finished = torch.isin(token, stop)
    for r, t in enumerate(token.tolist()):
        answers[r].append(t)
    if max_new_tokens <= 1 or bool(finished.all()):
        return answers
    cache = BranchCache(
        text,
        full,
        n_text_rows,
        n_rows,
        max_new_tokens - 1,
        adapter.layer_windows(),
        start=batch.seq_len,
    )
    step_positions = adapter.next_positions(positions, n_rows // size)
    cache_kwarg = compat.cache_kwarg(adapter.model)
    for step in range(max_new_tokens - 1):
        length = batch.seq_len + step + 1
        mask = torch.ones(n_rows, 1, 1, length, dtype=torch.bool, device=token.device)
        out = adapter.model(
            input_ids=token[:, None].to(adapter.input_device()),
            position_ids=step_positions + step,
            attention_mask=mask,  # a ready 4-D mask: the model builds none (the views mask)
            use_cache=True,
            **{cache_kwarg: cache},
        )
        cache.step += 1
        token = policy.choose(out.logits[:, -1], contexts(), step + 1).to(token.device)
        for r, t in enumerate(token.tolist()):
            answers[r].append(t)
        finished |= torch.isin(token, stop)
        if bool(finished.all()):
            break
    adapter.reset_state()
    return answers

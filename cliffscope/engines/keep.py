"""Which positions survive truncation, and the attention row strategies rank image tokens by.

Shared by the per-k truncation context (`truncation.py`) and the prefix-shared branch engine
(`branches.py`), so both remove exactly the same positions:

- `KeepPlan`: per row, the sequence positions kept from layer k on (text, plus the image tokens a
  strategy selected, or merged), compacted and left-padded again when rows keep different
  counts; `compose` chains the plans of a staged strategy, `pad_plan` widens a plan so rows of
  several branches share one batch.
- `LastRowTap`: a kernel tap that records, in chosen layers, the head-mean attention the last
  query position pays every key — read from the model's own post-RoPE query and key and its own
  mask, so it works for every family and kernel (no projection is recomputed).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import torch

from cliffscope.engines.layer_calls import take
from cliffscope.engines.masks import visible_from_mask

if TYPE_CHECKING:
    from cliffscope.models.base import ModelAdapter, PreparedBatch


@dataclass(frozen=True)
class KeepPlan:
    """Kept positions per row: `index` (B, T) into the input sequence, `valid` (B, T).

    Rows that keep fewer positions get invalid filler slots where their image was (copies of
    the position before it), so the batch stays rectangular, causal order is preserved, and
    the first `shared` positions are the input positions 0..shared-1 in every row (they
    come before every row's image, so truncation never changes them).

    A slot may MERGE several input positions (the `pool` strategy): `sources` (B, T, M) and
    `weights` (B, T, M) say which positions it averages and how (unused entries weigh 0); its
    `index` is the position whose place it takes. Without merges both are None and `gather`
    is a plain gather, bit-exact.
    """

    index: torch.Tensor
    valid: torch.Tensor
    shared: int
    sources: torch.Tensor | None = None
    weights: torch.Tensor | None = None

    @property
    def length(self) -> int:
        return int(self.index.shape[1])

    def gather(self, hidden: torch.Tensor, start: int = 0, offset: int = 0) -> torch.Tensor:
        """(B', T - start, D): `hidden` (B', S - offset, D) at the slots from `start` on.

        `offset`: `hidden` holds input positions offset.. only (a branch's rows after the shared
        prefix); fillers that point before it read row 0 (their values are never seen).
        """
        index = self.index[:, start:].to(hidden.device)
        if self.sources is None:
            return take(hidden, (index - offset).clamp(min=0), 1)
        sources = (self.sources[:, start:].to(hidden.device) - offset).clamp(min=0)
        rows, slots, width = sources.shape
        picked = take(hidden, sources.reshape(rows, slots * width), 1)
        picked = picked.reshape(picked.shape[0], slots, width, -1).float()
        weights = self.weights[:, start:].to(hidden.device)
        if picked.shape[0] != rows:  # branch-major rows of a batch (see `take`)
            weights = weights.repeat(picked.shape[0] // rows, 1, 1)
        return (picked * weights[..., None]).sum(dim=2).to(hidden.dtype)

    def fillers(self) -> torch.Tensor:
        """(B, T) boolean: filler slots (a copy of the slot before them; real slots never
        repeat a position)."""
        same = self.index[:, 1:] == self.index[:, :-1]
        return torch.cat([torch.zeros_like(same[:, :1]), same], dim=1)


def keep_plan(
    keep: torch.Tensor,
    valid: torch.Tensor,
    image: torch.Tensor,
    merges: list[dict[int, list[int]]] | None = None,
) -> KeepPlan:
    """Plan from (B, S) boolean `keep`, validity and image masks (fillers go at the image);
    `merges`: per row, {kept position: positions averaged into it} (see `KeepPlan`)."""
    counts = keep.sum(dim=1)
    length = int(counts.max())
    firsts = [int(row.nonzero()[0]) if bool(row.any()) else 0 for row in image]
    # kept positions before each row's image (== its first image position, unless an earlier
    # stage's fillers between the text and the image were dropped)
    starts = [int(keep[row, :first].sum()) for row, first in enumerate(firsts)]
    index = torch.zeros(keep.shape[0], length, dtype=torch.long, device=keep.device)
    kept_valid = torch.zeros(keep.shape[0], length, dtype=torch.bool, device=keep.device)
    for row in range(keep.shape[0]):
        positions = keep[row].nonzero().squeeze(1)
        start, fill = starts[row], length - positions.numel()
        filler = positions[max(start - 1, 0)].expand(fill)
        index[row] = torch.cat([positions[:start], filler, positions[start:]])
        kept_valid[row, :start] = valid[row, positions[:start]]
        kept_valid[row, start + fill :] = valid[row, positions[start:]]
    plan = KeepPlan(index=index, valid=kept_valid, shared=min(starts))
    if merges is None or not any(merges):
        return plan
    return _with_merges(plan, merges)


def _with_merges(plan: KeepPlan, merges: list[dict[int, list[int]]]) -> KeepPlan:
    """`plan` whose slots at merge representatives average their sources (equal weights)."""
    width = max(len(group) for row in merges for group in row.values())
    rows, slots = plan.index.shape
    sources = plan.index[:, :, None].repeat(1, 1, width)
    weights = torch.zeros(rows, slots, width, dtype=torch.float32, device=plan.index.device)
    weights[:, :, 0] = 1.0
    for row, groups in enumerate(merges):
        if not groups:
            continue
        where = {int(p): t for t, p in enumerate(plan.index[row].tolist())}
        for position, group in groups.items():
            slot = where[int(position)]
            sources[row, slot, : len(group)] = torch.tensor(group, device=sources.device)
            weights[row, slot] = 0.0
            weights[row, slot, : len(group)] = 1.0 / len(group)
    return replace(plan, sources=sources, weights=weights)


def compose(outer: KeepPlan, inner: KeepPlan) -> KeepPlan:
    """`inner` (a plan over `outer`'s slots) as a plan over `outer`'s input positions."""
    if outer.sources is not None and inner.sources is not None:
        from cliffscope.errors import CliffscopeError

        raise CliffscopeError("a strategy cannot merge tokens that an earlier stage merged")
    sources = outer.sources
    weights = outer.weights
    if inner.sources is not None:
        sources, weights = take(outer.index, inner.sources.flatten(1), 1), inner.weights
        sources = sources.view_as(inner.sources)
    elif sources is not None:
        sources = torch.gather(sources, 1, inner.index[..., None].expand(-1, -1, sources.shape[2]))
        weights = torch.gather(weights, 1, inner.index[..., None].expand(-1, -1, weights.shape[2]))
    return KeepPlan(
        index=take(outer.index, inner.index, 1),
        valid=inner.valid,
        shared=outer.shared,
        sources=sources,
        weights=weights,
    )


def pad_plan(plan: KeepPlan, length: int, at: int) -> KeepPlan:
    """`plan` widened to `length` slots by invalid fillers inserted at slot `at` (copies of
    slot `at - 1`), so rows of plans of different lengths can share a batch."""
    extra = length - plan.length
    if extra <= 0:
        return plan
    if at < 1:
        raise ValueError("fillers copy the slot before them: insert at >= 1")
    src = max(at - 1, 0)

    def widen(x: torch.Tensor, fill: torch.Tensor) -> torch.Tensor:
        return torch.cat([x[:, :at], fill, x[:, at:]], dim=1)

    rows = plan.index.shape[0]
    index = widen(plan.index, plan.index[:, src : src + 1].expand(rows, extra))
    valid = widen(plan.valid, plan.valid.new_zeros(rows, extra))
    sources = weights = None
    if plan.sources is not None:
        sources = widen(plan.sources, plan.sources[:, src : src + 1].expand(rows, extra, -1))
        weights = widen(plan.weights, plan.weights[:, src : src + 1].expand(rows, extra, -1))
    return KeepPlan(index, valid, plan.shared, sources, weights)


def image_mask(batch: PreparedBatch, length: int | None = None) -> torch.Tensor:
    """(B, length) boolean: True at the image-token positions of each row's prompt."""
    length = length or batch.seq_len
    mask = torch.zeros(len(batch), length, dtype=torch.bool, device=batch.input_ids.device)
    for row, groups in enumerate(batch.groups):
        mask[row, list(groups.image)] = True
    return mask


def extend_valid(prefix: torch.Tensor, length: int) -> torch.Tensor:
    """A (B, P) validity mask followed by valid positions up to `length` (generated tokens)."""
    extra = length - prefix.shape[1]
    if extra <= 0:
        return prefix[:, :length].bool()
    ones = torch.ones(prefix.shape[0], extra, dtype=torch.bool, device=prefix.device)
    return torch.cat([prefix.bool(), ones], dim=1)


def last_row_attention(
    query: torch.Tensor, key: torch.Tensor, mask: Any, kwargs: dict[str, Any], module: Any
) -> torch.Tensor:
    """(B, K) head-mean softmax of the LAST query row over the keys its mask allows (float32).

    `query` (B, H, Q, d) and `key` (B, Hkv, K, d) are what the attention kernel received
    (post-RoPE); scaling and logit soft-capping are the ones the model passed the kernel.
    """
    batch, heads, n_queries, dim = query.shape
    n_keys = key.shape[2]
    scaling = kwargs.get("scaling")
    if scaling is None:  # what sdpa uses when the model passes none
        scaling = dim**-0.5
    q = query[:, :, -1:].float()
    k = key.float().repeat_interleave(heads // key.shape[1], dim=1)
    scores = (q @ k.transpose(-1, -2)) * scaling  # (B, H, 1, K)
    softcap = kwargs.get("softcap")
    if softcap:
        scores = torch.tanh(scores / softcap) * softcap
    rows = torch.full((batch, 1), n_queries - 1, dtype=torch.long, device=query.device)
    visible = visible_from_mask(mask, rows, n_queries, n_keys, query.device)
    scores = scores.masked_fill(~visible, float("-inf"))
    return scores.softmax(dim=-1).mean(dim=1)[:, 0]


class LastRowTap:
    """Kernel tap: the last query row's attention (`last_row_attention`) in `layers`.

    By default only fresh forwards count (queries = keys, nothing cached), so cached decoding
    steps never overwrite the prompt's row; `fresh_only=False` also reads calls whose earlier
    keys come from a cache (a shared engine recomputing a branch after the shared prefix, where
    the last query is still the last prompt position). `rows[layer]` holds (B, K) on the
    layer's device.
    """

    def __init__(self, adapter: ModelAdapter, layers: set[int], fresh_only: bool = True) -> None:
        self.adapter = adapter
        self.layers = layers
        self.fresh_only = fresh_only
        self.rows: dict[int, torch.Tensor] = {}

    def __call__(self, module: Any, query: Any, key: Any, mask: Any, kwargs: dict) -> None:
        layer = self.adapter.layer_index(module)
        if layer not in self.layers or (self.fresh_only and query.shape[2] != key.shape[2]):
            return None
        self.rows[layer] = last_row_attention(query, key, mask, kwargs, module)
        return None

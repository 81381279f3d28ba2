"""Which positions survive truncation, and the attention row strategies rank image tokens by.

Shared by the per-k truncation context (`truncation.py`) and the prefix-shared sweep
(`sweep.py`), so both remove exactly the same positions:

- `KeepPlan`: per row, the sequence positions kept from layer k on (text, plus the image tokens a
  strategy selected), compacted and left-padded again when rows keep different counts.
- `LastRowTap`: a kernel tap that records, in chosen layers, the head-mean attention the last
  query position pays every key — read from the model's own post-RoPE query and key and its own
  mask, so it works for every family and kernel (no projection is recomputed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from cliffscope.engines.masks import visible_from_mask

if TYPE_CHECKING:
    from cliffscope.models.base import ModelAdapter, PreparedBatch


@dataclass(frozen=True)
class KeepPlan:
    """Kept positions per row: `index` (B, T) into the original sequence, `valid` (B, T).

    Rows that keep fewer positions get invalid filler slots where their image was (copies of
    the position before it), so the batch stays rectangular, causal order is preserved, and
    the first `shared` positions are the original positions 0..shared-1 in every row (they
    come before every row's image, so truncation never changes them).
    """

    index: torch.Tensor
    valid: torch.Tensor
    shared: int

    @property
    def length(self) -> int:
        return int(self.index.shape[1])


def keep_plan(keep: torch.Tensor, valid: torch.Tensor, image: torch.Tensor) -> KeepPlan:
    """Plan from (B, S) boolean `keep`, validity and image masks (fillers go at the image)."""
    counts = keep.sum(dim=1)
    length = int(counts.max())
    starts = [int(row.nonzero()[0]) if bool(row.any()) else 0 for row in image]
    index = torch.zeros(keep.shape[0], length, dtype=torch.long, device=keep.device)
    kept_valid = torch.zeros(keep.shape[0], length, dtype=torch.bool, device=keep.device)
    for row in range(keep.shape[0]):
        positions = keep[row].nonzero().squeeze(1)
        start, fill = starts[row], length - positions.numel()
        filler = positions[max(start - 1, 0)].expand(fill)
        index[row] = torch.cat([positions[:start], filler, positions[start:]])
        kept_valid[row, :start] = valid[row, positions[:start]]
        kept_valid[row, start + fill :] = valid[row, positions[start:]]
    return KeepPlan(index=index, valid=kept_valid, shared=min(starts))


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

    Only fresh forwards count (queries = keys, nothing cached), so cached decoding steps never
    overwrite the prompt's row. `rows[layer]` holds (B, K) on the layer's device.
    """

    def __init__(self, adapter: ModelAdapter, layers: set[int]) -> None:
        self.adapter = adapter
        self.layers = layers
        self.rows: dict[int, torch.Tensor] = {}

    def __call__(self, module: Any, query: Any, key: Any, mask: Any, kwargs: dict) -> None:
        layer = self.adapter.layer_index(module)
        if layer not in self.layers or query.shape[2] != key.shape[2]:
            return None
        self.rows[layer] = last_row_attention(query, key, mask, kwargs, module)
        return None

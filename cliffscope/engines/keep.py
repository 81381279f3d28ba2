"""Which positions survive truncation, and the masks and rotary slices that go with them.

Shared by the per-k truncation context (`truncation.py`) and the prefix-shared sweep
(`sweep.py`), so both remove exactly the same positions and build exactly the same masks:

- `KeepPlan`: per row, the sequence positions kept from layer k on (text, plus the image tokens a
  `keep_ratio` selected), compacted and left-padded again when rows keep different counts.
- `build_mask`: the attention mask a layer expects, made by the model's own mask function for its
  attention implementation (eager: additive floats, sdpa: booleans or None for plain causal),
  from a 2-D key validity mask, so truncated layers see the same kind of mask as untouched ones.
- `last_row_attention` / `select_image`: FastV-style ranking of image tokens by the attention
  the last prompt position pays them at layer k-1 (head mean), recomputed from that layer's input.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from cliffscope.errors import CliffscopeError

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


def gather_positions(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x[b, index[b, t], ...] for a (B or 1, S, ...) tensor; a batch of 1 is broadcast."""
    if x.shape[0] == 1 and index.shape[0] > 1:
        x = x.expand(index.shape[0], *x.shape[1:])
    shape = (*index.shape, *x.shape[2:])
    idx = index.reshape(*index.shape, *([1] * (x.dim() - 2))).expand(shape)
    return torch.gather(x, 1, idx)


def image_mask(batch: PreparedBatch, length: int | None = None) -> torch.Tensor:
    """(B, length) boolean: True at the image-token positions of each row's prompt."""
    length = length or batch.seq_len
    mask = torch.zeros(len(batch), length, dtype=torch.bool, device=batch.input_ids.device)
    for row, groups in enumerate(batch.groups):
        mask[row, groups.image.start : groups.image.stop] = True
    return mask


def extend_valid(prefix: torch.Tensor, length: int) -> torch.Tensor:
    """A (B, P) validity mask followed by valid positions up to `length` (generated tokens)."""
    extra = length - prefix.shape[1]
    if extra <= 0:
        return prefix[:, :length]
    ones = torch.ones(prefix.shape[0], extra, dtype=torch.bool, device=prefix.device)
    return torch.cat([prefix.bool(), ones], dim=1)


def build_mask(
    config: Any,
    valid: torch.Tensor,
    q_length: int,
    q_offset: int,
    dtype: torch.dtype,
    blocked: torch.Tensor | None = None,
) -> Any:
    """Causal mask over keys 0..K-1 (K = valid.shape[1]) for queries q_offset..q_offset+q-1.

    `blocked` (B, K) marks keys no other position may see (mask mode); each blocked query
    still sees itself so no softmax row is empty. Built by the attention implementation's own
    mask function, exactly as `create_causal_mask` would for an untruncated sequence.
    """
    from transformers.masking_utils import (
        ALL_MASK_ATTENTION_FUNCTIONS,
        and_masks,
        causal_mask_function,
        or_masks,
    )

    impl = config._attn_implementation
    try:
        mask_interface = ALL_MASK_ATTENTION_FUNCTIONS[impl]
    except KeyError:
        raise CliffscopeError(
            f"attention implementation {impl!r} has no mask function registered",
            hint="truncation needs masks: use eager or sdpa, or register the kernel's mask too",
        ) from None
    mask_function: Callable = causal_mask_function
    if blocked is not None:
        if impl.startswith("flash"):
            raise CliffscopeError(
                "mask mode needs an attention kernel that takes a full mask",
                hint="use attn_implementation = sdpa or eager for --mode mask",
            )
        visible = ~blocked

        def unblocked(batch_idx: Any, head_idx: Any, q_idx: Any, kv_idx: Any) -> Any:
            return visible[batch_idx, kv_idx]

        def itself(batch_idx: Any, head_idx: Any, q_idx: Any, kv_idx: Any) -> Any:
            return q_idx == kv_idx

        mask_function = and_masks(causal_mask_function, or_masks(unblocked, itself))
    return mask_interface(
        batch_size=valid.shape[0],
        q_length=q_length,
        kv_length=valid.shape[1],
        q_offset=q_offset,
        kv_offset=0,
        mask_function=mask_function,
        attention_mask=valid.bool(),
        allow_is_causal_skip=blocked is None,
        dtype=dtype,
        config=config,
        use_vmap=False,
        device=valid.device,
    )


def generation_positions(adapter: ModelAdapter, batch: PreparedBatch) -> torch.Tensor:
    """The prompt's position ids exactly as `generate` makes them (padding-aware; M-RoPE).

    A plain `model(**inputs)` numbers left padding as real positions, `generate` does not;
    using generate's numbering makes a batch answer like its rows one at a time.
    """
    kwargs = dict(batch.inputs)
    return adapter.model._prepare_position_ids_for_generation(batch.input_ids, kwargs)


def next_positions(positions: torch.Tensor, repeats: int) -> torch.Tensor:
    """Position ids of the first generated token, repeated `repeats` times along the batch."""
    last = positions[..., -1:] + 1
    return last.repeat(repeats, 1) if last.dim() == 2 else last.repeat(1, repeats, 1)


def reset_rope_state(adapter: ModelAdapter) -> None:
    """Qwen2-VL caches `rope_deltas` between calls; independent calls must not share it."""
    inner = getattr(adapter.model, "model", None)
    if inner is not None and hasattr(inner, "rope_deltas"):
        inner.rope_deltas = None


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def _project(attn: torch.nn.Module, proj: str, norm: str, x: torch.Tensor) -> torch.Tensor:
    """(B, S, D) -> (B, heads, S, head_dim), with the family's q/k norm when it has one."""
    batch, seq = x.shape[:2]
    out = getattr(attn, proj)(x).view(batch, seq, -1, attn.head_dim)
    if hasattr(attn, norm):
        out = getattr(attn, norm)(out)
    return out.transpose(1, 2)


@torch.no_grad()
def last_row_attention(
    layer: torch.nn.Module,
    hidden: torch.Tensor,
    position_embeddings: tuple[torch.Tensor, torch.Tensor],
    valid: torch.Tensor,
) -> torch.Tensor:
    """Head-mean attention (B, S) the last position pays every key in `layer`.

    Recomputed from the layer's input hidden states (B, S, D) with the layer's own norm,
    projections and rotary embedding, so no attention kernel has to return weights.
    """
    attn = layer.self_attn
    x = layer.input_layernorm(hidden)
    cos, sin = (t.expand(hidden.shape[0], *t.shape[1:]).unsqueeze(1) for t in position_embeddings)
    q = _project(attn, "q_proj", "q_norm", x[:, -1:])
    k = _project(attn, "k_proj", "k_norm", x)
    q = q * cos[:, :, -1:] + _rotate_half(q) * sin[:, :, -1:]
    k = k * cos + _rotate_half(k) * sin
    k = k.repeat_interleave(q.shape[1] // k.shape[1], dim=1)
    scores = (q @ k.transpose(-1, -2)).squeeze(2).float() * attn.scaling
    scores = scores.masked_fill(~valid.bool()[:, None, :], float("-inf"))
    return scores.softmax(dim=-1).mean(dim=1)


def select_image(image: torch.Tensor, scores: torch.Tensor, ratio: float) -> torch.Tensor:
    """(B, S) boolean: per row, the round(ratio * n_image) image positions scoring highest."""
    selected = torch.zeros_like(image)
    for row in range(image.shape[0]):
        positions = image[row].nonzero().squeeze(1)
        n_keep = int(ratio * positions.numel() + 0.5)
        if n_keep:
            top = scores[row, positions].topk(n_keep).indices
            selected[row, positions[top]] = True
    return selected


def check_keep_ratio(keep_ratio: float | None, k: int) -> None:
    if keep_ratio is None:
        return
    if not 0.0 <= keep_ratio <= 1.0:
        raise CliffscopeError(f"keep ratio must lie in [0, 1], got {keep_ratio}")
    if k == 0:
        raise CliffscopeError(
            "--keep-ratio ranks image tokens by the attention at layer k-1, so k must be >= 1",
            hint="start the layers at 1 (e.g. --layers 1:32)",
        )

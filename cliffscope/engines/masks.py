"""Attention masks for layers that see a changed sequence, and reading the masks a model built.

Layers after a truncation see fewer positions than the model built its masks for, so the
engines build those layers' masks themselves, from one boolean rule applied in ORIGINAL
positions (the index each kept slot had in the untruncated sequence):

    key visible  =  key valid (not padding)
                 and (key position <= query position                 (causal)
                      or both in the same image block)               (Gemma 3: image both ways)
                 and query position - key position < window          (sliding-window layers)

(4.57 lets a block escape the window: (causal and in window) or same block; see compat.)
                 and (key not blocked or key is the query itself)     (mask mode, knockout)

Windows are counted in original positions, as the untouched model counts them, so a sliding
layer after truncation sees the same text keys it saw before. The rule is then written in the
format the layer's kernel expects: eager takes an additive float mask (0 or the dtype's
minimum), sdpa a boolean one (True = attend), flash-attention a 2-D padding mask (it cannot take
arbitrary masks, so blocking or windows over a shortened sequence are refused).
"""

from __future__ import annotations

from typing import Any

import torch

from cliffscope.errors import CliffscopeError


def allowed_keys(
    valid: torch.Tensor,
    query_positions: torch.Tensor,
    key_positions: torch.Tensor,
    window: int | None = None,
    blocked: torch.Tensor | None = None,
    query_blocks: torch.Tensor | None = None,
    key_blocks: torch.Tensor | None = None,
) -> torch.Tensor:
    """(B, Q, K) boolean: which key each query may attend to (see module docstring).

    `valid`, `key_positions`, `key_blocks`: (B, K); `query_positions`, `query_blocks`: (B, Q);
    `blocked`: (B, K) or (B, Q, K). Block id 0 means "in no block".
    """
    from cliffscope.models.compat import blocks_escape_windows

    q = query_positions[:, :, None]
    k = key_positions[:, None, :]
    order = k <= q
    near = (q - k < window) if window is not None else None
    if query_blocks is not None and key_blocks is not None:
        qb, kb = query_blocks[:, :, None], key_blocks[:, None, :]
        same = (qb == kb) & (qb > 0)
        if near is not None and blocks_escape_windows():
            order, near = (order & near) | same, None
        else:
            order = order | same
    allowed = valid.bool()[:, None, :] & order
    if near is not None:
        allowed &= near
    if blocked is not None:
        block = blocked[:, None, :] if blocked.dim() == 2 else blocked
        allowed &= ~block | (k == q)
    return allowed


def format_mask(allowed: torch.Tensor, implementation: str, dtype: torch.dtype) -> Any:
    """(B, Q, K) boolean rule -> the mask the kernel `implementation` takes."""
    base = implementation.removeprefix("cliffscope_")
    if base.startswith("flash"):
        raise CliffscopeError(
            f"the {base} kernel cannot take this mask (blocked keys, or a sliding window over a "
            "shortened sequence)",
            hint='use attn_implementation = "sdpa" or "eager" in the profile for this run',
        )
    mask = allowed[:, None]
    if base == "eager":
        zero = torch.zeros((), dtype=dtype, device=mask.device)
        return torch.where(mask, zero, torch.finfo(dtype).min)
    return mask


def flash_padding_mask(valid: torch.Tensor) -> torch.Tensor | None:
    """What flash-attention kernels take: the 2-D padding mask, or None without padding."""
    return None if bool(valid.all()) else valid.long()


def layer_mask(
    implementation: str,
    valid: torch.Tensor,
    key_positions: torch.Tensor,
    query_positions: torch.Tensor,
    dtype: torch.dtype,
    window: int | None = None,
    blocked: torch.Tensor | None = None,
    query_blocks: torch.Tensor | None = None,
    key_blocks: torch.Tensor | None = None,
) -> Any:
    """The mask one layer gets over a changed sequence (see module docstring)."""
    base = implementation.removeprefix("cliffscope_")
    if base.startswith("flash") and blocked is None and key_blocks is None:
        contiguous = bool(((key_positions[:, 1:] - key_positions[:, :-1]) <= 1).all())
        if window is None or contiguous:
            return flash_padding_mask(valid)
    allowed = allowed_keys(
        valid, query_positions, key_positions, window, blocked, query_blocks, key_blocks
    )
    return format_mask(allowed, implementation, dtype)


def visible_from_mask(
    mask: Any, rows: torch.Tensor, n_queries: int, n_keys: int, device: Any
) -> torch.Tensor:
    """[B, 1|H, R, K] boolean: the keys the given query rows may see under a model's own mask.

    `rows` (B, R) are query indices into the call's `n_queries` queries. Handles 4-D boolean
    (sdpa) and additive float (eager) masks, 2-D padding masks (flash) and None (plain causal,
    nothing padded); keys already in a cache come first.
    """
    batch, n_rows = rows.shape
    if isinstance(mask, torch.Tensor) and mask.dim() == 4:
        full = mask.expand(batch, mask.shape[1], n_queries, n_keys)
        picked = full.gather(2, rows[:, None, :, None].expand(batch, mask.shape[1], n_rows, n_keys))
        if picked.dtype == torch.bool:
            return picked
        return picked > torch.finfo(picked.dtype).min / 2
    offset = n_keys - n_queries
    keys = torch.arange(n_keys, device=device)
    allowed = keys[None, None, None, :] <= (rows + offset)[:, None, :, None]
    if isinstance(mask, torch.Tensor) and mask.dim() == 2:
        allowed = allowed & mask[:, None, None, -n_keys:].bool()
    return allowed

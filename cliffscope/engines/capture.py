"""Attention-flow capture: per-layer, per-head attention mass on each token group.

The fast kernels (sdpa, flash-attention) never materialise attention weights, and eager +
`output_attentions` holds every layer's full [B, H, S, S] map. Instead, the collector is a tap
of cliffscope's attention kernel (`models.kernel`, registered with `transformers.
AttentionInterface` around the model's own kernel): in every decoder layer it sees the
post-RoPE `query` and `key` and the model's own mask, recomputes softmax rows for just the few
query positions we study (in float32, over the keys the mask allows), reduces them at once to
one mass per head and group, and then the untouched kernel computes the layer output as
before. What is kept is O(layers x heads x queries x groups), never a full map; only rows that
need an attention map also keep their head-reduced query->key row (O(layers x keys)).

Taps live in a context variable for the duration of one `capture_flow` call, so concurrent
calls in other threads never share state; the vision tower keeps its own kernel.

Query modes: `last` = the last prompt position (the query that produces the first answer
token, as in the paper's code); `answer` = every teacher-forced answer position (each sees
system, image, instruction and the answer tokens up to itself), averaged; a row with an empty
answer falls back to its last prompt position. Heads are reduced by `mean` or `max` per query
and group, then queries are averaged. Density = mass / number of visible keys in the group;
even spread = a group's share of the visible keys (what uniform attention would give).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from cliffscope.engines.masks import visible_from_mask
from cliffscope.errors import CliffscopeError
from cliffscope.models.base import GROUP_NAMES, PreparedBatch, TokenGroups
from cliffscope.models.kernel import tapping

if TYPE_CHECKING:
    from cliffscope.models.base import ModelAdapter

Query = Literal["last", "answer"]
Heads = Literal["mean", "max"]

N_GROUPS = len(GROUP_NAMES)


# ---- the collector --------------------------------------------------------------------------


def query_positions(groups: Sequence[TokenGroups], query: Query) -> list[list[int]]:
    """Sequence positions whose attention is measured, per row (see module docstring)."""
    if query == "last":
        return [[g.last_prompt_position] for g in groups]
    if query == "answer":
        return [list(g.output) or [g.last_prompt_position] for g in groups]
    raise CliffscopeError(f"unknown query mode {query!r}", hint="use last or answer")


def group_matrix(groups: Sequence[TokenGroups], length: int) -> torch.Tensor:
    """One-hot [B, length, 4]: which group each key position belongs to (pad: none)."""
    out = torch.zeros(len(groups), length, N_GROUPS)
    for row, g in enumerate(groups):
        for j, span in enumerate(g.spans().values()):
            out[row, list(span), j] = 1.0
    return out


class FlowCollector:
    """Receives every decoder layer's query/key and keeps per-head group masses.

    One collector serves one forward call. `map_rows` are batch rows that also keep their
    head-reduced query->key attention rows (for attention maps).
    """

    def __init__(
        self,
        groups: Sequence[TokenGroups],
        positions: Sequence[Sequence[int]],
        heads: Heads = "mean",
        map_rows: Sequence[int] = (),
        *,
        layer_index: Callable[[torch.nn.Module], int | None],
    ) -> None:
        if heads not in ("mean", "max"):
            raise CliffscopeError(f"unknown head reduction {heads!r}", hint="use mean or max")
        width = max(len(p) for p in positions)
        self.positions = torch.tensor([list(p) + [p[0]] * (width - len(p)) for p in positions])
        self.valid = torch.tensor([[i < len(p) for i in range(width)] for p in positions])
        self.groups = list(groups)
        self.layer_index = layer_index  # the adapter's: which decoder layer a module is
        self.heads = heads
        self.map_rows = list(map_rows)
        self.mass: dict[int, torch.Tensor] = {}  # layer_idx -> [B, H, Q, 4], on its device
        self.key_attention: dict[int, torch.Tensor] = {}  # layer_idx -> [R, K]
        self.counts: torch.Tensor | None = None  # [B, Q, 4] visible keys per group
        self._device_cache: dict[torch.device, dict[str, torch.Tensor]] = {}

    def _on(self, device: torch.device, n_keys: int) -> dict[str, torch.Tensor]:
        """Index tensors on `device`, made once: a host->device copy per layer would stall
        the GPU stream (layers may sit on several devices with a device map)."""
        cache = self._device_cache.get(device)
        if cache is None:
            cache = {
                "pos": self.positions.to(device),
                "valid": self.valid.to(device).float(),
                "onehot": group_matrix(self.groups, n_keys).to(device)[:, None],  # [B,1,K,4]
                "rows": torch.tensor(self.map_rows, dtype=torch.long).to(device),
            }
            self._device_cache[device] = cache
        return cache

    def __call__(
        self, module: torch.nn.Module, query: Any, key: Any, mask: Any, kwargs: dict
    ) -> None:
        """The kernel tap: observe this layer's call (changes nothing)."""
        layer = self.layer_index(module)
        if layer is not None:
            self.observe(layer, query, key, mask, kwargs.get("scaling"))

    def observe(
        self,
        layer: int,
        query: torch.Tensor,
        key: torch.Tensor,
        mask: torch.Tensor | None,
        scaling: float | None,
    ) -> None:
        """Group masses of this layer's query rows; results stay on the device until `finish`."""
        batch, n_heads, seq, dim = query.shape
        n_kv, n_keys = key.shape[1], key.shape[2]
        cache = self._on(query.device, n_keys)
        pos = cache["pos"]
        n_q = pos.shape[1]
        scale = scaling if scaling is not None else dim**-0.5
        q = query.gather(2, pos[:, None, :, None].expand(batch, n_heads, n_q, dim)).float()
        # GQA without repeat_kv: query heads h = kv * rep + r share key head kv.
        rep = n_heads // n_kv
        scores = torch.matmul(
            q.reshape(batch, n_kv, rep * n_q, dim), key.float().transpose(-1, -2)
        ).reshape(batch, n_heads, n_q, n_keys)
        allowed = visible_from_mask(mask, pos, seq, n_keys, query.device)
        probs = (scores * scale).masked_fill(~allowed, float("-inf")).softmax(dim=-1)
        self.mass[layer] = torch.matmul(probs, cache["onehot"])
        if self.counts is None:
            self.counts = torch.matmul(allowed[:, :1].float(), cache["onehot"])[:, 0]
        if self.map_rows:
            rows = probs.index_select(0, cache["rows"])  # [R, H, Q, K]
            reduced = rows.mean(dim=1) if self.heads == "mean" else rows.amax(dim=1)
            valid = cache["valid"].index_select(0, cache["rows"])  # [R, Q]
            per_row = (reduced * valid[..., None]).sum(1) / valid.sum(1, keepdim=True)
            self.key_attention[layer] = per_row

    def finish(self, layer_ids: Sequence[int]) -> FlowCapture:
        missing = [i for i in layer_ids if i not in self.mass]
        if missing or self.counts is None:
            raise CliffscopeError(
                f"attention capture saw {len(self.mass)} of {len(layer_ids)} decoder layers",
                hint="this model's attention does not go through transformers' AttentionInterface",
            )
        key_attention = {}
        if self.map_rows:
            stacked = torch.stack([self.key_attention[i].cpu() for i in layer_ids], dim=1)
            key_attention = {r: stacked[j].numpy() for j, r in enumerate(self.map_rows)}  # [L, K]
        return FlowCapture(
            per_head=torch.stack([self.mass[i].cpu() for i in layer_ids]).numpy(),
            counts=self.counts.cpu().numpy(),
            valid=self.valid.numpy(),
            positions=self.positions.numpy(),
            heads=self.heads,
            key_attention=key_attention,
        )


@dataclass
class FlowCapture:
    """What one captured forward leaves behind (numpy, on the CPU).

    `per_head` [L, B, H, Q, 4]: each head's mass on each group for each query (rows of
    padded queries are meaningless, see `valid` [B, Q]); `counts` [B, Q, 4]: visible keys per
    group; `key_attention`: batch row -> [L, K] head-reduced, query-averaged attention rows.
    """

    per_head: np.ndarray
    counts: np.ndarray
    valid: np.ndarray
    positions: np.ndarray
    heads: Heads
    key_attention: dict[int, np.ndarray]

    def _reduce(self, per_head: np.ndarray) -> np.ndarray:
        """[L, B, H, Q, 4] -> [B, L, 4]: heads by mean/max per query, then mean over queries."""
        red = per_head.mean(axis=2) if self.heads == "mean" else per_head.max(axis=2)
        w = self.valid.astype(np.float64)  # [B, Q]
        out = (red * w[None, :, :, None]).sum(axis=2) / w.sum(axis=1)[None, :, None]
        return out.transpose(1, 0, 2)

    def mass(self) -> np.ndarray:
        """[B, L, 4] attention mass per group (groups in `GROUP_NAMES` order)."""
        return self._reduce(self.per_head)

    def density(self) -> np.ndarray:
        """[B, L, 4] mass per visible key of the group (0 where the group is not visible)."""
        counts = self.counts[None, :, None]  # [1, B, 1, Q, 4]
        per_key = np.divide(
            self.per_head, counts, out=np.zeros_like(self.per_head), where=counts > 0
        )
        return self._reduce(per_key)

    def even_spread(self) -> np.ndarray:
        """[B, 4] each group's share of the visible keys, averaged over the row's queries."""
        share = self.counts / self.counts.sum(axis=-1, keepdims=True)
        w = self.valid.astype(np.float64)
        return (share * w[..., None]).sum(axis=1) / w.sum(axis=1)[:, None]


def capture_flow(
    adapter: ModelAdapter,
    batch: PreparedBatch,
    query: Query = "last",
    heads: Heads = "mean",
    map_rows: Sequence[int] = (),
) -> FlowCapture:
    """One forward pass of `batch` (teacher-forced answers included) with flow capture."""
    positions = query_positions(batch.groups, query)
    collector = FlowCollector(
        batch.groups, positions, heads=heads, map_rows=map_rows, layer_index=adapter.layer_index
    )
    with tapping(collector), torch.inference_mode():
        adapter.model(
            **batch.inputs, position_ids=adapter.position_ids(batch), use_cache=False,
            logits_to_keep=1,
        )  # fmt: skip
    adapter.reset_state()
    return collector.finish(list(range(adapter.num_layers)))

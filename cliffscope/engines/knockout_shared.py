"""Prefix-shared attention knockout: one baseline forward, then every window start of an edge
recomputed together from its first layer.

A branch (edge, window start l) equals the untouched model in layers < l, and in layers >= l
it differs only at rows from the first position that can lose a key: the first target query
that comes after a source key (or the start of a both-ways block holding one, Gemma 3).
Earlier rows never attend to a target (causal order), so their hidden states, keys and values
are the baseline's in every layer. So `knockout_shared`:

1. runs the teacher-forced batch once with hooks that record every decoder layer's own call
   arguments (its mask, rotary tables, position ids ...) and, at every window start, the
   hidden states entering that layer at the rows that can change, plus the full KV cache and
   the features a family injects after layers (Qwen3-VL's deepstack);
2. per edge, recomputes layers l .. L-1 for every start l on those rows, batched across
   starts: at layer j every branch with l <= j runs as one batch through the real decoder
   layer, called with its recorded arguments gathered at those rows and the keys/values of
   the earlier rows from the baseline cache (`branch_recompute.SharedPrefixKV`); its mask is the
   model's own mask of layer j (windows and blocks in original positions: nothing is removed)
   minus the edge's pairs for the branches whose window holds j; injected features are added
   at the recomputed image rows, exactly as the model adds them;
3. scores each branch's answer from `adapter.head` on the recomputed rows.

A branch that blocks nothing (a zero-layer window, or an edge without a pair in the batch) IS
the baseline and is copied from it. Tests hold the numbers to `knockout_naive` within 1e-5.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from cliffscope.engines.branch_recompute import SharedPrefixKV
from cliffscope.engines.knockout import (
    KnockoutOutput,
    Scoring,
    blocked_mask,
    blocked_pairs,
    group_masks,
    mask_dtype,
    resolve,
    score,
    window_layers,
)
from cliffscope.engines.layer_calls import gathered_kwargs, hidden_of, layer_call
from cliffscope.engines.masks import visible_from_mask
from cliffscope.knockout_edges import Edge
from cliffscope.models import compat

if TYPE_CHECKING:
    from cliffscope.models.base import ModelAdapter, PreparedBatch


def first_changed(
    groups: dict[str, torch.Tensor], edge: Edge, blocks: torch.Tensor | None
) -> int | None:
    """The first position whose hidden states blocking `edge` can change (None: none can):
    the first target query after a source key in some row, or the first position of a
    both-ways block (`adapter.attention_blocks`) that holds such a query."""
    source, target = groups[edge.source], groups[edge.target]
    length = source.shape[1]
    positions = torch.arange(length, device=source.device)
    first_source = torch.where(source, positions, length).amin(dim=1, keepdim=True)
    hit = target & (positions > first_source)  # a target that can see a source key
    if not bool(hit.any()):
        return None
    first = int(hit.any(dim=0).nonzero()[0])
    if blocks is not None:
        blocks = blocks.to(hit.device)
        for row in range(hit.shape[0]):
            ids = blocks[row][hit[row]].unique()
            ids = ids[ids > 0]
            if ids.numel():
                inside = torch.isin(blocks[row], ids)
                first = min(first, int(inside.nonzero()[0]))
    return first


class _Recorder:
    """Pre-hooks for the baseline forward: every layer's call arguments from the first window
    start on, and each start's entry hidden states at rows `rows_from` .. S-1."""

    def __init__(self, starts: Sequence[int], rows_from: int) -> None:
        self.starts, self.first, self.rows_from = set(starts), min(starts), rows_from
        self.calls: dict[int, dict[str, Any]] = {}
        self.entry: dict[int, torch.Tensor] = {}

    def hook(self, index: int):
        def enter(module: Any, args: tuple, kwargs: dict) -> None:
            if index >= self.first:
                self.calls[index] = dict(kwargs)
            if index in self.starts:
                self.entry[index] = hidden_of(args, kwargs)[:, self.rows_from :].clone()

        return enter


@torch.no_grad()
def knockout_shared(
    adapter: ModelAdapter,
    batch: PreparedBatch,
    edges: Sequence[Edge | str],
    window: int,
    starts: Sequence[int] | None = None,
) -> KnockoutOutput:
    """`knockout_naive`'s numbers from one baseline forward (see module docstring)."""
    edges, starts, plan = resolve(adapter, batch, edges, window, starts)
    groups = group_masks(batch)
    blocks = adapter.attention_blocks(batch)
    firsts = {e: first_changed(groups, e, blocks) for e in edges} if window > 0 else {}
    live = {e: f for e, f in firsts.items() if f is not None}
    rows_from = min(live.values(), default=batch.seq_len)
    recorder = _Recorder(starts, rows_from)
    base, cache, injected = _baseline(adapter, batch, plan, recorder if live else None)
    shape = (len(edges), len(starts), len(batch))
    first, answer = np.empty(shape), np.empty(shape)
    first[:], answer[:] = base[0], base[1]
    for e, edge in enumerate(edges):
        if edge in live:
            branch = _Branches(adapter, batch, groups, edge, window, live[edge], rows_from)
            first[e], answer[e] = branch.run(recorder, cache, injected, starts, plan)
    return KnockoutOutput(
        edges, starts, int(window), adapter.num_layers, first, answer, base[0], base[1]
    )


def _baseline(
    adapter: ModelAdapter, batch: PreparedBatch, plan: Scoring, recorder: _Recorder | None
) -> tuple[tuple[np.ndarray, np.ndarray], Any, list[Any]]:
    """The untouched forward's scores, and (with a recorder) its cache and injected features."""
    decoder = adapter.decoder_layers()
    cache = compat.new_dynamic_cache() if recorder is not None else None
    handles = []
    if recorder is not None:
        handles = [
            layer.register_forward_pre_hook(recorder.hook(i), with_kwargs=True)
            for i, layer in enumerate(decoder)
        ]
    injections = adapter.injections()
    recording = (
        injections.recording()
        if injections is not None and recorder is not None
        else contextlib.nullcontext([])
    )
    keep = batch.seq_len - plan.start
    extra = {compat.cache_kwarg(adapter.model): cache} if cache is not None else {}
    try:
        with recording as injected:
            out = adapter.model(
                **batch.inputs, position_ids=adapter.position_ids(batch),
                use_cache=cache is not None, logits_to_keep=keep, **extra,
            )  # fmt: skip
    finally:
        for handle in handles:
            handle.remove()
        adapter.reset_state()
    first, answer = score(out.logits[:, -keep:-1], plan)
    return (first.numpy(), answer.numpy()), cache, list(injected[:1])


class _Branches:
    """Every window start of one edge, recomputed on rows `shared` .. S-1 (see module doc)."""

    def __init__(
        self,
        adapter: ModelAdapter,
        batch: PreparedBatch,
        groups: dict[str, torch.Tensor],
        edge: Edge,
        window: int,
        shared: int,
        rows_from: int,
    ) -> None:
        self.adapter, self.window, self.shared, self.rows_from = adapter, window, shared, rows_from
        self.batch, self.length, self.n_layers = len(batch), batch.seq_len, adapter.num_layers
        self.blocked = blocked_pairs(groups, [edge], slice(shared, None))  # (B, R, S)
        rows = torch.arange(shared, self.length, device=batch.input_ids.device)
        self.rows = rows.expand(self.batch, rows.numel())  # (B, R) query positions
        self._visible: dict[int, torch.Tensor] = {}

    def visible(self, mask: Any) -> torch.Tensor:
        """(B, 1|H, R, S): what the recomputed rows see under a layer's own mask."""
        key = id(mask)  # the recorded calls keep every mask alive: ids are not reused
        if key not in self._visible:
            device = mask.device if isinstance(mask, torch.Tensor) else self.rows.device
            self._visible[key] = visible_from_mask(
                mask, self.rows.to(device), self.length, self.length, device
            )
        return self._visible[key]

    def mask(self, own: Any, active: list[int], layer: int, dtype: torch.dtype) -> Any:
        """The layer's mask for every active branch (branch-major rows), the edge's pairs
        blocked for the branches whose window holds `layer`."""
        n = len(active)
        visible = self.visible(own)
        visible = visible.repeat(n, 1, 1, 1)
        inside = torch.tensor(
            [layer in window_layers(s, self.window, self.n_layers) for s in active],
            device=visible.device,
        ).repeat_interleave(self.batch)
        blocked = self.blocked.to(visible.device).repeat(n, 1, 1) & inside[:, None, None]
        return blocked_mask(visible, blocked, self.adapter.attention_kernel, dtype)

    def run(
        self,
        recorder: _Recorder,
        cache: Any,
        injected: list[Any],
        starts: list[int],
        plan: Scoring,
    ) -> tuple[np.ndarray, np.ndarray]:
        """[W, B] first-token and whole-answer log-probs of every start."""
        adapter, shared, length, batch = self.adapter, self.shared, self.length, self.batch
        decoder = adapter.decoder_layers()
        injections = adapter.injections()
        hidden: torch.Tensor | None = None
        active: list[int] = []
        for j in range(starts[0], len(decoder)):
            if j in starts:
                entry = recorder.entry[j][:, shared - self.rows_from :]
                hidden = entry if hidden is None else torch.cat([hidden, entry.to(hidden.device)])
                active.append(j)
            call = recorder.calls[j]
            own = call.get("attention_mask")
            mask = self.mask(own, active, j, mask_dtype(own, hidden))
            keys, values = compat.cache_layer_kv(cache, j)
            kv = SharedPrefixKV(keys[:, :, :shared], values[:, :, :shared], len(active))
            positions = self.rows.to(hidden.device).repeat(len(active), 1)
            updates = gathered_kwargs(call, positions, length, past=shared)
            hidden = compat.layer_output(
                decoder[j](
                    hidden,
                    **layer_call(
                        decoder[j], call, kv, attention_mask=mask, use_cache=True, **updates
                    ),
                )
            )
            if injected:
                rows = torch.arange(hidden.shape[0], device=hidden.device) % batch
                hidden = injections.add(injected[0], j, hidden, positions, rows)
        first = np.empty((len(starts), batch))
        answer = np.empty((len(starts), batch))
        lo, hi = plan.start - shared, length - 1 - shared
        for i in range(len(starts)):
            logits = adapter.head(hidden[i * batch : (i + 1) * batch, lo:hi])
            f, a = score(logits, plan)
            first[i], answer[i] = f.numpy(), a.numpy()
        return first, answer

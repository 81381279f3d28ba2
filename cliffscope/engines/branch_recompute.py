"""Step 2 of the shared branch engine: every branch's later layers as one running batch.

`Recompute` holds the branch rows after the shared prefix, branch-major (`Segment`s in the
order branches joined). At each layer, branches whose first layer it is join; a staged
strategy re-plans its own rows from the attention they paid in the layer before; then the real
decoder layer runs once over all rows, called with its recorded arguments gathered at the kept
positions, the masks truncation builds, and the full run's keys/values for the shared prefix
(`SharedPrefixKV`). Rows of different lengths share the batch by invalid fillers inserted right
after the shared prefix (`keep.pad_plan`), stripped again whenever the batch changes, so every
branch keeps its own compact plan.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from cliffscope.engines.branch_decode import Prefix
from cliffscope.engines.keep import KeepPlan, LastRowTap, compose, pad_plan
from cliffscope.engines.layer_calls import gathered_kwargs, layer_call, take
from cliffscope.engines.masks import layer_mask
from cliffscope.engines.stages import BatchFacts, choose, stage_plan
from cliffscope.models import compat
from cliffscope.models.kernel import tapping

if TYPE_CHECKING:
    from cliffscope.models.base import ModelAdapter


@dataclass
class Segment:
    """One branch's rows in the running batch, compact: plan (B, T) over original positions and
    hidden states (B, T - shared, D) of the slots after the shared prefix."""

    branch: int
    plan: KeepPlan
    hidden: torch.Tensor
    extra: int = 0  # fillers inserted at the shared prefix while assembled


def image_counts(facts: BatchFacts, plan: KeepPlan) -> list[int]:
    image = take(facts.image, plan.index.clamp(max=facts.image.shape[1] - 1), 1)
    return (image & plan.valid).sum(dim=1).tolist()


class SharedPrefixKV:
    """Stands in for a cache while recomputing one branch layer over the positions after the
    shared prefix: prepends the prefix's keys/values (from the full run, the same in every
    branch) and keeps the result as the branches' text-only cache of that layer."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, n_branches: int) -> None:
        self.prefix = (keys, values)
        self.n_branches = n_branches
        self.keys = self.values = None

    def update(self, key: torch.Tensor, value: torch.Tensor, layer_idx: int, *a: Any, **kw: Any):
        pk, pv = (p.repeat(self.n_branches, 1, 1, 1) for p in self.prefix)
        self.keys, self.values = torch.cat([pk, key], dim=2), torch.cat([pv, value], dim=2)
        return self.keys, self.values

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return int(self.prefix[0].shape[2])


class Recompute:
    """The running batch of branch rows, layer by layer (see module docstring, step 2)."""

    def __init__(
        self,
        adapter: ModelAdapter,
        recorder: Any,
        cache: Any,
        keep_kv: bool,
        injected: list[Any],
    ) -> None:
        self.adapter, self.recorder, self.cache = adapter, recorder, cache
        self.keep_kv, self.injected = keep_kv, injected
        self.shared = recorder.shared
        self.size = recorder.valid.shape[0]
        self.length = recorder.valid.shape[1]
        self.blocks = adapter.attention_blocks(recorder.facts.batch)
        self.segments: list[Segment] = []
        self.plan: KeepPlan | None = None
        self.hidden: torch.Tensor | None = None

    def run(self, active: list[int]) -> tuple[list[int], torch.Tensor, dict[int, Prefix]]:
        """Layers from the first branch layer on; returns the row order (branch indices),
        first-token logits (N, V) and each layer's branch cache."""
        rec = self.recorder
        decoder = self.adapter.decoder_layers()
        windows = self.adapter.layer_windows()
        text_kv: dict[int, Prefix] = {}
        rows: dict[int, torch.Tensor] = {}
        masks: dict[int | None, Any] = {}
        for j in range(rec.first, len(decoder)):
            joining = [i for i in active if rec.layers[i][0] == j]
            replanning = [s for s in self.segments if j in rec.layers[s.branch][1:]]
            if joining or replanning:
                attention = {id(s): self._own_rows(s, rows[j - 1]) for s in replanning}
                self._split()
                for segment in replanning:
                    self._replan(segment, j, attention[id(segment)])
                self.segments += [rec.entry.pop(i) for i in joining]
                self._assemble()
                masks = {}
            if windows[j] not in masks:
                masks[windows[j]] = self._mask(windows[j])
            later = any(j + 1 in rec.layers[s.branch][1:] for s in self.segments)
            tap = LastRowTap(self.adapter, {j}, fresh_only=False)
            with tapping(tap) if later else contextlib.nullcontext():
                kv = self._call(decoder[j], j, masks[windows[j]])
            if later:
                rows[j] = tap.rows[j]
            if self.keep_kv:  # only decoding needs them; single-token runs save the memory
                text_kv[j] = Prefix(
                    kv.keys, kv.values, valid=self.plan.valid, positions=self.plan.index
                )
        logits = self.adapter.head(self.hidden[:, -1:])[:, -1].float()
        return [s.branch for s in self.segments], logits, text_kv

    def _call(self, layer: torch.nn.Module, j: int, mask: Any) -> SharedPrefixKV:
        plan, shared = self.plan, self.shared
        keys, values = compat.cache_layer_kv(self.cache, j)
        n_branches = self.hidden.shape[0] // self.size
        kv = SharedPrefixKV(keys[:, :, :shared], values[:, :, :shared], n_branches)
        call = self.recorder.calls[j]
        updates = gathered_kwargs(call, plan.index[:, shared:], self.length, past=shared)
        hidden = compat.layer_output(
            layer(
                self.hidden,
                **layer_call(layer, call, kv, attention_mask=mask, use_cache=True, **updates),
            )
        )
        if self.injected:
            rows = torch.arange(hidden.shape[0], device=hidden.device) % self.size
            sources = weights = None
            if plan.sources is not None:
                sources, weights = plan.sources[:, shared:], plan.weights[:, shared:]
            hidden = self.adapter.injections().add(
                self.injected[0], j, hidden, plan.index[:, shared:], rows, sources, weights
            )
        self.hidden = hidden
        return kv

    def _mask(self, window: int | None) -> Any:
        plan, shared = self.plan, self.shared
        key_blocks = None if self.blocks is None else take(self.blocks, plan.index, 1)
        return layer_mask(
            self.adapter.attention_kernel,
            plan.valid,
            plan.index,
            plan.index[:, shared:],
            self.hidden.dtype,
            window=window,
            key_blocks=key_blocks,
            query_blocks=None if key_blocks is None else key_blocks[:, shared:],
        )

    def _own_rows(self, segment: Segment, attention: torch.Tensor) -> torch.Tensor:
        """A segment's rows of a batch-wide (N, T) attention row, over its compact slots."""
        offset = self.segments.index(segment) * self.size
        att = attention[offset : offset + self.size]
        return torch.cat([att[:, : self.shared], att[:, self.shared + segment.extra :]], dim=1)

    def _replan(self, segment: Segment, layer: int, att: torch.Tensor) -> None:
        """A later stage of a staged strategy, over the segment's own (compact) slots."""
        rec, shared = self.recorder, self.shared
        branch = rec.branches[segment.branch]
        stage = rec.layers[segment.branch].index(layer)
        plan = segment.plan
        inputs = rec.facts.inputs(branch.strategy, stage, layer, plan.index, plan.valid, att)
        relative = stage_plan(
            choose(branch.strategy, inputs), plan.index, plan.valid, rec.facts.image, plan.fillers()
        )
        segment.hidden = relative.gather(segment.hidden, start=shared, offset=shared)
        segment.plan = compose(plan, relative)
        counts = image_counts(rec.facts, segment.plan)
        for row, n in zip(rec.kept[segment.branch], counts, strict=True):
            row.append(n)

    def _split(self) -> None:
        """Write the running batch's hidden states back into compact segments."""
        if self.hidden is None:
            return
        for n, segment in enumerate(self.segments):
            rows = self.hidden[n * self.size : (n + 1) * self.size]
            segment.hidden = rows[:, segment.extra :]
            segment.extra = 0

    def _assemble(self) -> None:
        """One batch from the segments, each widened to the longest by fillers at the prefix."""
        length = max(s.plan.length for s in self.segments)
        plans, hidden = [], []
        for segment in self.segments:
            segment.extra = length - segment.plan.length
            plans.append(pad_plan(segment.plan, length, self.shared))
            pad = segment.hidden.new_zeros(self.size, segment.extra, segment.hidden.shape[2])
            hidden.append(
                torch.cat([pad, segment.hidden], dim=1) if segment.extra else segment.hidden
            )
        self.plan = _cat_plans(plans)
        self.hidden = torch.cat(hidden) if len(hidden) > 1 else hidden[0]


def _cat_plans(plans: list[KeepPlan]) -> KeepPlan:
    """Plans of equal length stacked along rows (single-source slots where one has merges)."""
    if len(plans) == 1:
        return plans[0]
    sources = weights = None
    if any(p.sources is not None for p in plans):
        width = max(1 if p.sources is None else p.sources.shape[2] for p in plans)
        pairs = [_sources(p, width) for p in plans]
        sources = torch.cat([a for a, _ in pairs])
        weights = torch.cat([b for _, b in pairs])
    return KeepPlan(
        index=torch.cat([p.index for p in plans]),
        valid=torch.cat([p.valid for p in plans]),
        shared=min(p.shared for p in plans),
        sources=sources,
        weights=weights,
    )


def _sources(plan: KeepPlan, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(sources, weights) of `width` merge entries per slot (unused entries weigh 0)."""
    if plan.sources is None:
        sources = plan.index[..., None]
        weights = torch.ones(*plan.index.shape, 1, dtype=torch.float32, device=sources.device)
    else:
        sources, weights = plan.sources, plan.weights
    extra = width - sources.shape[2]
    if extra:
        sources = torch.cat([sources, sources[..., :1].expand(-1, -1, extra)], dim=2)
        weights = torch.cat([weights, weights.new_zeros(*weights.shape[:2], extra)], dim=2)
    return sources, weights

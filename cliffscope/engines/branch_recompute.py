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
from dataclasses import dataclass, field
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


#: a bucket holds branch rows down to (1 - SPREAD) of its longest: padding costs compute, an
#: extra bucket costs one more call per layer
SPREAD = 0.125


@dataclass
class Bucket:
    """Consecutive segments run as one batch: their plans widened to the longest (fillers at
    the shared prefix), hidden states stacked, masks built once per window."""

    segments: list[Segment]
    plan: KeepPlan
    hidden: torch.Tensor
    masks: dict[int | None, Any] = field(default_factory=dict)


class Recompute:
    """The running batch of branch rows, layer by layer (see module docstring)."""

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
        self.buckets: list[Bucket] = []

    def run(self, active: list[int]) -> tuple[list[int], torch.Tensor, dict[int, Prefix]]:
        """Layers from the first branch layer on; returns the row order (branch indices),
        first-token logits (N, V) and each layer's branch cache."""
        rec = self.recorder
        decoder = self.adapter.decoder_layers()
        windows = self.adapter.layer_windows()
        text_kv: dict[int, Prefix] = {}
        attention: dict[int, torch.Tensor] = {}  # id(segment) -> its last-row attention
        for j in range(rec.first, len(decoder)):
            joining = [rec.entry.pop(i) for i in active if rec.layers[i][0] == j]
            replanning = [s for s in self.segments if j in rec.layers[s.branch][1:]]
            if joining or replanning:
                self._split()
                for segment in replanning:
                    self._replan(segment, j, attention.pop(id(segment)))
                self.segments += sorted(joining, key=lambda s: -s.plan.length)
                self._bucket()
            later = {id(s) for s in self.segments if j + 1 in rec.layers[s.branch][1:]}
            caches = []
            for bucket in self.buckets:
                if windows[j] not in bucket.masks:
                    bucket.masks[windows[j]] = self._mask(bucket, windows[j])
                tap = LastRowTap(self.adapter, {j}, fresh_only=False)
                wanted = any(id(s) in later for s in bucket.segments)
                with tapping(tap) if wanted else contextlib.nullcontext():
                    caches.append(self._call(bucket, decoder[j], j, bucket.masks[windows[j]]))
                if wanted:
                    attention.update(self._own_rows(bucket, tap.rows[j]))
            if self.keep_kv:  # only decoding needs them; single-token runs save the memory
                text_kv[j] = _joined(self.buckets, caches)
        logits = torch.cat(
            [self.adapter.head(b.hidden[:, -1:])[:, -1].float() for b in self.buckets]
        )
        return [s.branch for s in self.segments], logits, text_kv

    def _call(self, bucket: Bucket, layer: torch.nn.Module, j: int, mask: Any) -> SharedPrefixKV:
        plan, shared = bucket.plan, self.shared
        keys, values = compat.cache_layer_kv(self.cache, j)
        kv = SharedPrefixKV(keys[:, :, :shared], values[:, :, :shared], len(bucket.segments))
        call = self.recorder.calls[j]
        updates = gathered_kwargs(call, plan.index[:, shared:], self.length, past=shared)
        hidden = compat.layer_output(
            layer(
                bucket.hidden,
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
        bucket.hidden = hidden
        return kv

    def _mask(self, bucket: Bucket, window: int | None) -> Any:
        plan, shared = bucket.plan, self.shared
        key_blocks = None if self.blocks is None else take(self.blocks, plan.index, 1)
        return layer_mask(
            self.adapter.attention_kernel,
            plan.valid,
            plan.index,
            plan.index[:, shared:],
            bucket.hidden.dtype,
            window=window,
            key_blocks=key_blocks,
            query_blocks=None if key_blocks is None else key_blocks[:, shared:],
        )

    def _own_rows(self, bucket: Bucket, attention: torch.Tensor) -> dict[int, torch.Tensor]:
        """Each segment's rows of its bucket's (N, T) attention row, over its compact slots."""
        out = {}
        for n, segment in enumerate(bucket.segments):
            att = attention[n * self.size : (n + 1) * self.size]
            out[id(segment)] = torch.cat(
                [att[:, : self.shared], att[:, self.shared + segment.extra :]], dim=1
            )
        return out

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
        """Write the buckets' hidden states back into compact segments."""
        for bucket in self.buckets:
            for n, segment in enumerate(bucket.segments):
                rows = bucket.hidden[n * self.size : (n + 1) * self.size]
                segment.hidden = rows[:, segment.extra :]
                segment.extra = 0
        self.buckets = []

    def _bucket(self) -> None:
        """Consecutive segments of similar length as buckets (row order is kept: decoding needs
        the rows a layer ran as a prefix of the batch)."""
        groups: list[list[Segment]] = []
        for segment in self.segments:
            group = groups[-1] if groups else None
            lengths = [s.plan.length for s in group or []] + [segment.plan.length]
            if group is not None and min(lengths) >= (1 - SPREAD) * max(lengths):
                group.append(segment)
            else:
                groups.append([segment])
        self.buckets = [self._assemble(group) for group in groups]

    def _assemble(self, segments: list[Segment]) -> Bucket:
        """One bucket from segments, each widened to the longest by fillers at the prefix."""
        length = max(s.plan.length for s in segments)
        plans, hidden = [], []
        for segment in segments:
            segment.extra = length - segment.plan.length
            plans.append(pad_plan(segment.plan, length, self.shared))
            pad = segment.hidden.new_zeros(self.size, segment.extra, segment.hidden.shape[2])
            hidden.append(
                torch.cat([pad, segment.hidden], dim=1) if segment.extra else segment.hidden
            )
        return Bucket(
            segments, _cat_plans(plans), torch.cat(hidden) if len(hidden) > 1 else hidden[0]
        )


def _joined(buckets: list[Bucket], caches: list[SharedPrefixKV]) -> Prefix:
    """One layer's branch cache over all buckets: shorter buckets padded at the end with
    invalid keys (the branch decoder masks them)."""
    if len(buckets) == 1:
        plan = buckets[0].plan
        return Prefix(caches[0].keys, caches[0].values, valid=plan.valid, positions=plan.index)
    length = max(kv.keys.shape[2] for kv in caches)

    def widen(x: torch.Tensor, dim: int) -> torch.Tensor:
        extra = length - x.shape[dim]
        if not extra:
            return x
        shape = list(x.shape)
        shape[dim] = extra
        return torch.cat([x, x.new_zeros(shape)], dim=dim)

    return Prefix(
        keys=torch.cat([widen(kv.keys, 2) for kv in caches]),
        values=torch.cat([widen(kv.values, 2) for kv in caches]),
        valid=torch.cat([widen(b.plan.valid, 1) for b in buckets]),
        positions=torch.cat([widen(b.plan.index, 1) for b in buckets]),
    )


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

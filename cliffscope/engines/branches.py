"""Many truncation branches of one batch: prefix-shared (fast) or one run each (naive).

A branch is a token strategy started at a layer k (`Branch`): the sweep's branches are one
strategy at many k, the prune kind's many strategies and budgets at one k (pyramid at its
schedule). Hidden states entering a branch's first layer at the kept positions are the same in
the untouched run and in that branch's own run (earlier layers see the same inputs). So
`shared_branches`:

1. runs the model once (vision tower included) with hooks that record every decoder layer's
   own call arguments and, at each branch's first layer, the hidden states of the slots its
   strategy keeps (or merges), ranked from the same run's attention (a kernel tap) or vision
   tower (`models.saliency`), plus the full prompt's KV cache;
2. recomputes the later layers of every branch as ONE running batch, branch-major: branches
   join at their first layer; a staged strategy re-plans its own rows at its later layers from
   the attention its rows paid in the layer before; rows of different lengths share the batch
   by invalid filler slots after the shared prefix (`keep.pad_plan`), stripped again when the
   batch changes. Each layer is the real decoder layer called with its recorded arguments
   gathered at the kept positions and the masks `truncation.truncate` builds. Positions before
   the first image token never see the image: their keys and values come from the full run;
3. decodes all branches (and the baseline) together, one model call per token, through
   `branch_decode` (layers before a branch's start read the shared full-prompt cache).

Every token is chosen by the adapter's decoding policy. `naive_branches` runs each branch on its
own inside `truncate(...)`; tests hold the two to the same answers and logits within 1e-5.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from cliffscope.engines.branch_decode import Prefix, decode_branches
from cliffscope.engines.branch_recompute import Recompute, Segment, image_counts
from cliffscope.engines.keep import LastRowTap
from cliffscope.engines.layer_calls import hidden_of
from cliffscope.engines.stages import BatchFacts, choose, identity_slots, stage_plan
from cliffscope.engines.truncation import Mode, check_stage_layers, truncate
from cliffscope.models import compat
from cliffscope.models.kernel import tapping

if TYPE_CHECKING:
    from cliffscope.models.base import ModelAdapter, PreparedBatch
    from cliffscope.strategies.base import TokenStrategy

BASE = "base"


@dataclass(frozen=True)
class Branch:
    """A strategy started at layer k (its stages: `strategy.stage_layers(k)`)."""

    name: int | str
    k: int
    strategy: TokenStrategy


@dataclass
class SweepOutput:
    """Answers per branch: `answers[name][row]` token ids (cut at the first stop token).

    Keys are the branch names and "base" (the untruncated model). `first_logits[name]` is
    (B, V): the raw logits that chose each branch's first token. `kept[name][row]`: image
    tokens present after each stage (shared engine only; exact for merging strategies).
    """

    answers: dict[int | str, list[list[int]]] = field(default_factory=dict)
    first_logits: dict[int | str, torch.Tensor] = field(default_factory=dict)
    kept: dict[int | str, list[list[int]]] = field(default_factory=dict)


def branch_layers(adapter: ModelAdapter, branch: Branch) -> list[int]:
    """The layers a branch acts at (checked); empty for k = L (the untouched model)."""
    n_layers = adapter.num_layers
    if branch.k >= n_layers:
        return []
    layers = branch.strategy.stage_layers(branch.k)
    check_stage_layers(layers, n_layers, branch.strategy)
    return layers


class _Recorder:
    """Hooks for the shared forward: every layer's call arguments from the first branch layer
    on, and each branch's first-stage slots (hidden states after the shared prefix)."""

    def __init__(
        self,
        adapter: ModelAdapter,
        batch: PreparedBatch,
        branches: list[Branch],
        layers: list[list[int]],
        keys: list[str] | None,
    ) -> None:
        self.adapter, self.branches, self.layers = adapter, branches, layers
        self.facts = BatchFacts(adapter, batch, [b.strategy for b in branches], keys)
        self.valid = batch.attention_mask.bool()
        self.first = min((stages[0] for stages in layers if stages), default=adapter.num_layers)
        firsts = [int(r.nonzero()[0]) if bool(r.any()) else 0 for r in self.facts.image]
        self.shared = min(firsts)
        self.entry: dict[int, Segment] = {}
        self.kept: dict[int, list[list[int]]] = {}
        self.calls: dict[int, dict[str, Any]] = {}
        needs = {
            stages[0] - 1
            for b, stages in zip(branches, layers, strict=True)
            if stages and b.strategy.needs_attention
        }
        self.tap = LastRowTap(adapter, needs)

    def hook(self, index: int):
        def enter(module: Any, args: tuple, kwargs: dict) -> None:
            if index >= self.first:
                self.calls[index] = dict(kwargs)
            for i, stages in enumerate(self.layers):
                if stages and stages[0] == index:
                    self._branch_entry(i, index, hidden_of(args, kwargs))

        return enter

    def _branch_entry(self, i: int, layer: int, hidden: torch.Tensor) -> None:
        strategy = self.branches[i].strategy
        attention = None
        if strategy.needs_attention:
            attention = self.tap.rows[layer - 1].to(self.facts.image.device)
        index, valid = identity_slots(self.valid, self.valid.shape[1])
        inputs = self.facts.inputs(strategy, 0, layer, index, valid, attention)
        plan = stage_plan(choose(strategy, inputs), index, valid, self.facts.image)
        self.kept[i] = [[n] for n in image_counts(self.facts, plan)]
        self.entry[i] = Segment(i, plan, plan.gather(hidden, start=self.shared))


@torch.no_grad()
def shared_branches(
    adapter: ModelAdapter,
    batch: PreparedBatch,
    branches: list[Branch],
    max_new_tokens: int = 1,
    keys: list[str] | None = None,
) -> SweepOutput:
    """Greedy answers for the baseline and every branch, sharing what they have in common."""
    layers = [branch_layers(adapter, b) for b in branches]
    active = sorted(
        (i for i, stages in enumerate(layers) if stages), key=lambda i: layers[i][0]
    )  # branch-major rows, ascending first layer: the rows a layer runs are a prefix
    recorder = _Recorder(adapter, batch, branches, layers, keys)
    cache = compat.new_dynamic_cache()
    positions = adapter.position_ids(batch)
    decoder = adapter.decoder_layers()
    handles = [
        layer.register_forward_pre_hook(recorder.hook(i), with_kwargs=True)
        for i, layer in enumerate(decoder)
    ]
    injections = adapter.injections()
    recording = injections.recording() if injections is not None else contextlib.nullcontext([])
    try:
        with tapping(recorder.tap), recorder.facts.vision_context(), recording as injected:
            out = adapter.model(
                **batch.inputs,
                position_ids=positions,
                use_cache=True,
                logits_to_keep=1,
                **{compat.cache_kwarg(adapter.model): cache},
            )
    finally:
        for handle in handles:
            handle.remove()
        adapter.reset_state()
    result = SweepOutput()
    base_logits = out.logits[:, -1].float()
    size = len(batch)
    running = Recompute(adapter, recorder, cache, max_new_tokens > 1, injected[:1])
    order, logits, text_kv = running.run(active) if active else ([], None, {})
    names = [branches[i].name for i in order]
    for n, i in enumerate(order):
        result.first_logits[names[n]] = logits[n * size : (n + 1) * size]
        result.kept[names[n]] = recorder.kept[i]
    for i, stages in enumerate(layers):
        if not stages:  # k = L: the untouched model
            result.first_logits[branches[i].name] = base_logits
    decoded = [*names, BASE]
    all_logits = torch.cat([*(result.first_logits[n] for n in names), base_logits])
    result.first_logits[BASE] = base_logits
    full = [
        Prefix(*compat.cache_layer_kv(cache, j), valid=recorder.valid) for j in range(len(decoder))
    ]
    text = [text_kv.get(j) for j in range(len(decoder))]
    n_text = [size * sum(1 for i in order if layers[i][0] <= j) for j in range(len(decoder))]
    tokens = decode_branches(
        adapter, batch, all_logits, full, text, n_text, positions, max_new_tokens
    )
    for n, name in enumerate(decoded):
        rows = tokens[n * size : (n + 1) * size]
        result.answers[name] = [adapter.policy.cut(row) for row in rows]
    for i, stages in enumerate(layers):
        if not stages:
            result.answers[branches[i].name] = result.answers[BASE]
    return result


@torch.no_grad()
def naive_branches(
    adapter: ModelAdapter,
    batch: PreparedBatch,
    branches: list[Branch],
    max_new_tokens: int = 1,
    mode: Mode = "drop",
    keys: list[str] | None = None,
) -> SweepOutput:
    """The reference: the baseline and each branch run on their own (forward, then
    `generate`), every one inside its own `truncate(...)`."""
    result = SweepOutput()
    positions = adapter.position_ids(batch)
    policy = adapter.policy
    contexts = [
        row[mask.bool()].tolist()
        for row, mask in zip(batch.input_ids, batch.attention_mask, strict=True)
    ]
    from cliffscope.strategies.drop_all import DropAll

    runs = [*branches, Branch(BASE, adapter.num_layers, DropAll())]
    for branch in runs:
        with truncate(adapter, branch.k, batch, mode=mode, strategy=branch.strategy, keys=keys):
            out = adapter.model(**batch.inputs, position_ids=positions, logits_to_keep=1)
        adapter.reset_state()
        result.first_logits[branch.name] = out.logits[:, -1].float()
        if max_new_tokens <= 1:
            first = policy.choose(out.logits[:, -1], contexts, 0)
            result.answers[branch.name] = [policy.cut([int(t)]) for t in first]
        else:
            with truncate(adapter, branch.k, batch, mode=mode, strategy=branch.strategy, keys=keys):
                result.answers[branch.name] = adapter.generate_ids(batch, max_new_tokens)
    return result

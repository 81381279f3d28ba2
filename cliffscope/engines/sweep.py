"""A truncation sweep over many k for one batch: prefix-shared (fast) or one run per k (naive).

Hidden states entering layer k at kept positions are the same in the untouched run and in a run
truncated at k (layers < k see the same inputs). So `shared_sweep`:

1. runs the model once (vision tower included) with hooks that record every decoder layer's
   own call arguments and, for every swept k, the hidden states entering layer k at the
   positions the strategy keeps (ranked, for FastV, from layer k-1's last-row attention, read
   by a kernel tap), plus the full prompt's KV cache;
2. recomputes only layers k..L-1 on those positions, batched across k: at layer j every branch
   with k <= j runs as one batch through the real decoder layer, called with its own recorded
   arguments gathered at the kept positions (rotary tables per layer type included) and the same
   masks `truncation.truncate` builds; the adapter's head gives each branch's first token.
   Positions before the first image token (BOS, system prompt) never see the image, so their
   keys and values are taken from the full run and only the positions after them are
   recomputed;
3. decodes all branches (and the baseline) together, one model call per token, through
   `branch_decode` (layers < k of a branch read the shared full-prompt cache).

Every token is chosen by the adapter's decoding policy (`models.decoding`), the same one
`generate` applies. `naive_sweep` runs each k on its own inside `truncate(...)`; tests hold the
two to the same answers and first-token logits within 1e-5. `mask` mode gives the same text
outputs as `drop` (tested), so the shared path computes it by dropping (result.json and the run
log say so).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from cliffscope.engines.branch_decode import Prefix, decode_branches
from cliffscope.engines.keep import KeepPlan, LastRowTap, image_mask, keep_plan
from cliffscope.engines.layer_calls import gathered_kwargs, hidden_of, layer_call, take
from cliffscope.engines.masks import layer_mask
from cliffscope.engines.truncation import Mode, resolve_strategy, truncate
from cliffscope.models import compat
from cliffscope.models.kernel import tapping
from cliffscope.strategies.base import SelectionInputs

if TYPE_CHECKING:
    from cliffscope.models.base import ModelAdapter, PreparedBatch
    from cliffscope.strategies.base import TokenStrategy

BASE = "base"


@dataclass
class SweepOutput:
    """Answers per branch: `answers[k][row]` token ids (cut at the first stop token).

    Keys are the swept layers (ints) and "base" (the untruncated model, which is also k = L).
    `first_logits[k]` is (B, V): the raw logits that chose each branch's first token.
    """

    answers: dict[int | str, list[list[int]]] = field(default_factory=dict)
    first_logits: dict[int | str, torch.Tensor] = field(default_factory=dict)


class _Recorder:
    """Hooks for the shared forward: every layer's call arguments from the first swept layer
    on, and each swept layer's entry states at the kept positions after the shared prefix."""

    def __init__(
        self,
        adapter: ModelAdapter,
        batch: PreparedBatch,
        ks: list[int],
        strategy: TokenStrategy,
        keys: list[str] | None,
    ) -> None:
        self.adapter, self.ks, self.strategy, self.keys = adapter, set(ks), strategy, keys
        self.first = min(ks) if ks else adapter.num_layers
        self.image = image_mask(batch)
        self.valid = batch.attention_mask.bool()
        self.blocks = adapter.attention_blocks(batch)
        self.keep: dict[int, KeepPlan] = {}
        self.entry: dict[int, torch.Tensor] = {}
        self.calls: dict[int, dict[str, Any]] = {}
        needs = {k - 1 for k in ks} if strategy.needs_attention else set()
        self.tap = LastRowTap(adapter, needs)

    def hook(self, index: int):
        def enter(module: Any, args: tuple, kwargs: dict) -> None:
            if index >= self.first:
                self.calls[index] = dict(kwargs)
            if index in self.ks:
                self._branch_entry(index, hidden_of(args, kwargs))

        return enter

    def _branch_entry(self, index: int, hidden: torch.Tensor) -> None:
        attention = None
        if self.strategy.needs_attention:
            attention = self.tap.rows[index - 1].to(self.image.device)
        inputs = SelectionInputs(
            layer=index, image=self.image, valid=self.valid, attention=attention, keys=self.keys
        )
        keep = ~self.image | (self.strategy.select(inputs).to(self.image.device) & self.image)
        plan = keep_plan(keep, self.valid, self.image)
        self.keep[index] = plan
        self.entry[index] = take(hidden, plan.index[:, plan.shared :].to(hidden.device), 1)


class _SharedPrefixKV:
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


def _swept(adapter: ModelAdapter, layers: list[int], strategy: TokenStrategy) -> list[int]:
    """Layers that need a branch (k = L is the baseline itself), ascending."""
    n_layers = adapter.num_layers
    out = sorted({int(k) for k in layers if int(k) < n_layers})
    for k in out:
        strategy.check_layer(k)
    return out


@torch.no_grad()
def shared_sweep(
    adapter: ModelAdapter,
    batch: PreparedBatch,
    layers: list[int],
    max_new_tokens: int = 1,
    keep_ratio: float | None = None,
    strategy: TokenStrategy | None = None,
    keys: list[str] | None = None,
) -> SweepOutput:
    """Greedy answers for the baseline and every k in `layers`, sharing the common prefix."""
    strategy = resolve_strategy(strategy, keep_ratio)
    ks = _swept(adapter, layers, strategy)
    decoder = adapter.decoder_layers()
    recorder = _Recorder(adapter, batch, ks, strategy, keys)
    cache = compat.new_dynamic_cache()
    positions = adapter.position_ids(batch)
    handles = [
        layer.register_forward_pre_hook(recorder.hook(i), with_kwargs=True)
        for i, layer in enumerate(decoder)
    ]
    injections = adapter.injections()
    recording = injections.recording() if injections is not None else contextlib.nullcontext([])
    try:
        with tapping(recorder.tap), recording as injected:
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
    result.first_logits[BASE] = out.logits[:, -1].float()
    keep_kv = max_new_tokens > 1
    branch_logits, text_kv = (
        _recompute_branches(adapter, ks, recorder, cache, keep_kv, injected[:1])
        if ks
        else (None, {})
    )
    for i, k in enumerate(ks):
        result.first_logits[k] = branch_logits[i * len(batch) : (i + 1) * len(batch)]
    branches = [*ks, BASE]
    logits = torch.cat([result.first_logits[k] for k in branches])
    full = [
        Prefix(*compat.cache_layer_kv(cache, j), valid=recorder.valid) for j in range(len(decoder))
    ]
    text = [text_kv.get(j) for j in range(len(decoder))]
    n_text = [len(batch) * sum(1 for k in ks if k <= j) for j in range(len(decoder))]
    tokens = decode_branches(adapter, batch, logits, full, text, n_text, positions, max_new_tokens)
    for i, k in enumerate(branches):
        rows = tokens[i * len(batch) : (i + 1) * len(batch)]
        result.answers[k] = [adapter.policy.cut(row) for row in rows]
    return result


def _recompute_branches(
    adapter: ModelAdapter,
    ks: list[int],
    recorder: _Recorder,
    cache: Any,
    keep_kv: bool,
    injected: list[Any],
) -> tuple[torch.Tensor, dict[int, Prefix]]:
    """Layers k..L-1 for every branch on the kept positions after the shared prefix, batched
    across branches per layer (plus the features a family injects after a layer, at the kept
    image rows); returns the first-token logits and each layer's branch cache."""
    decoder = adapter.decoder_layers()
    injections = adapter.injections()
    blocks = recorder.blocks
    windows = adapter.layer_windows()
    shared = recorder.keep[ks[0]].shared
    batch = recorder.keep[ks[0]].index.shape[0]
    length = recorder.image.shape[1]
    hidden = index = valid = None
    text_kv: dict[int, Prefix] = {}
    for j in range(ks[0], len(decoder)):
        if j in recorder.entry:
            plan = recorder.keep[j]
            hidden = _cat(hidden, recorder.entry.pop(j))
            index = _cat(index, plan.index)
            valid = _cat(valid, plan.valid)
            masks: dict[int | None, Any] = {}
        call = recorder.calls[j]
        if windows[j] not in masks:
            key_blocks = None if blocks is None else take(blocks, index, 1)
            masks[windows[j]] = layer_mask(
                adapter.attention_kernel,
                valid,
                index,
                index[:, shared:],
                hidden.dtype,
                window=windows[j],
                key_blocks=key_blocks,
                query_blocks=None if key_blocks is None else key_blocks[:, shared:],
            )
        keys, values = compat.cache_layer_kv(cache, j)
        kv = _SharedPrefixKV(keys[:, :, :shared], values[:, :, :shared], hidden.shape[0] // batch)
        updates = gathered_kwargs(call, index[:, shared:], length, past=shared)
        hidden = compat.layer_output(
            decoder[j](
                hidden,
                **layer_call(
                    decoder[j],
                    call,
                    kv,
                    attention_mask=masks[windows[j]],
                    use_cache=True,
                    **updates,
                ),
            )
        )
        if injected:
            rows = torch.arange(hidden.shape[0], device=hidden.device) % batch
            hidden = injections.add(injected[0], j, hidden, index[:, shared:], rows)
        if keep_kv:  # only decoding needs them; single-token sweeps save the memory
            text_kv[j] = Prefix(kv.keys, kv.values, valid=valid, positions=index)
    return adapter.head(hidden[:, -1:])[:, -1].float(), text_kv


def _cat(a: torch.Tensor | None, b: torch.Tensor | None) -> torch.Tensor | None:
    if b is None:
        return a
    return b if a is None else torch.cat([a, b])


@torch.no_grad()
def naive_sweep(
    adapter: ModelAdapter,
    batch: PreparedBatch,
    layers: list[int],
    max_new_tokens: int = 1,
    mode: Mode = "drop",
    keep_ratio: float | None = None,
    strategy: TokenStrategy | None = None,
    keys: list[str] | None = None,
) -> SweepOutput:
    """The reference: the baseline and each k run on their own (forward, then `generate`)."""
    strategy = resolve_strategy(strategy, keep_ratio)
    result = SweepOutput()
    positions = adapter.position_ids(batch)
    policy = adapter.policy
    contexts = [
        row[mask.bool()].tolist()
        for row, mask in zip(batch.input_ids, batch.attention_mask, strict=True)
    ]
    for k in [*_swept(adapter, layers, strategy), BASE]:
        level = adapter.num_layers if k == BASE else k
        with truncate(adapter, level, batch, mode=mode, strategy=strategy, keys=keys):
            out = adapter.model(**batch.inputs, position_ids=positions, logits_to_keep=1)
        adapter.reset_state()
        result.first_logits[k] = out.logits[:, -1].float()
        if max_new_tokens <= 1:
            first = policy.choose(out.logits[:, -1], contexts, 0)
            result.answers[k] = [policy.cut([int(t)]) for t in first]
        else:
            with truncate(adapter, level, batch, mode=mode, strategy=strategy, keys=keys):
                result.answers[k] = adapter.generate_ids(batch, max_new_tokens)
    return result

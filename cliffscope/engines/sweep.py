"""A truncation sweep over many k for one batch: prefix-shared (fast) or one run per k (naive).

Hidden states entering layer k at kept positions are the same in the untouched run and in a run
truncated at k (layers < k see the same inputs). So `shared_sweep`:

1. runs the model once (vision tower included) with hooks that keep, for every swept k, the
   hidden states entering layer k at the positions that survive (text, or text plus the
   keep_ratio selection ranked from layer k-1), plus the full prompt's KV cache;
2. recomputes only layers k..L-1 on those positions, batched across k: at layer j every branch
   with k <= j runs as one batch through the real decoder layer, with the same masks and rotary
   slices as `truncation.truncate`; the final norm and head give each branch's first token.
   Positions before the first image token (BOS, system prompt) never see the image, so their
   keys and values are taken from the full run and only the positions after them are
   recomputed;
3. decodes all branches (and the baseline) together, one model call per token, through
   `branch_decode` (layers < k of a branch read the shared full-prompt cache).

`naive_sweep` runs each k on its own inside `truncate(...)`; tests hold the two to the same
answers and first-token logits within 1e-5. `mask` mode gives the same text outputs as `drop`
(tested), so the shared path computes it by dropping.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from cliffscope.engines.branch_decode import BranchCache, Prefix, branch_attention
from cliffscope.engines.keep import (
    KeepPlan,
    build_mask,
    check_keep_ratio,
    gather_positions,
    generation_positions,
    image_mask,
    keep_plan,
    last_row_attention,
    next_positions,
    reset_rope_state,
    select_image,
)
from cliffscope.engines.truncation import Mode, truncate

if TYPE_CHECKING:
    from cliffscope.models.base import ModelAdapter, PreparedBatch

BASE = "base"


@dataclass
class SweepOutput:
    """Answers per branch: `answers[k][row]` token ids (cut at the first stop token).

    Keys are the swept layers (ints) and "base" (the untruncated model, which is also k = L).
    `first_logits[k]` is (B, V): the logits that chose each branch's first token.
    """

    answers: dict[int | str, list[list[int]]] = field(default_factory=dict)
    first_logits: dict[int | str, torch.Tensor] = field(default_factory=dict)


class _Capture:
    """Hooks for the shared forward: each swept layer's entry states at the kept positions
    after the shared prefix, its keep plan, and layer 0's rotary and position arguments."""

    def __init__(
        self, decoder: Any, batch: PreparedBatch, ks: list[int], keep_ratio: float | None
    ) -> None:
        self.decoder, self.ks, self.keep_ratio = decoder, set(ks), keep_ratio
        self.image = image_mask(batch)
        self.valid = batch.attention_mask.bool()
        self.keep: dict[int, KeepPlan] = {}
        self.entry: dict[int, torch.Tensor] = {}
        self.layer_args: dict[str, Any] = {}
        self.previous_input: torch.Tensor | None = None

    def hook(self, index: int):
        def enter(module: Any, args: tuple, kwargs: dict) -> None:
            hidden = args[0] if args else kwargs["hidden_states"]
            if index == 0:
                self.layer_args = {
                    "position_embeddings": kwargs["position_embeddings"],
                    "position_ids": kwargs.get("position_ids"),
                }
            if index in self.ks:
                self._branch_entry(index, hidden, kwargs["position_embeddings"])
            if self.keep_ratio is not None:
                self.previous_input = hidden

        return enter

    def _branch_entry(self, index: int, hidden: torch.Tensor, rope: tuple) -> None:
        keep = ~self.image
        if self.keep_ratio is not None:  # FastV: rank by layer index-1's last-row attention
            layer = self.decoder[index - 1]
            scores = last_row_attention(layer, self.previous_input, rope, self.valid)
            keep = keep | select_image(self.image, scores, self.keep_ratio)
        plan = keep_plan(keep, self.valid, self.image)
        self.keep[index] = plan
        self.entry[index] = gather_positions(hidden, plan.index[:, plan.shared :])


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


def _cut(ids: list[int], stop: set[int]) -> list[int]:
    return ids[: next((i for i, t in enumerate(ids) if t in stop), len(ids))]


def _swept(adapter: ModelAdapter, layers: list[int], keep_ratio: float | None) -> list[int]:
    """Layers that need a branch (k = L is the baseline itself), ascending."""
    n_layers = adapter.num_layers
    out = sorted({int(k) for k in layers if int(k) < n_layers})
    for k in out:
        check_keep_ratio(keep_ratio, k)
    return out


@torch.no_grad()
def shared_sweep(
    adapter: ModelAdapter,
    batch: PreparedBatch,
    layers: list[int],
    max_new_tokens: int = 1,
    keep_ratio: float | None = None,
) -> SweepOutput:
    """Greedy answers for the baseline and every k in `layers`, sharing the common prefix."""
    ks = _swept(adapter, layers, keep_ratio)
    decoder = adapter.decoder_layers()
    capture = _Capture(decoder, batch, ks, keep_ratio)
    from transformers import DynamicCache

    cache = DynamicCache(config=adapter.text_config)
    positions = generation_positions(adapter, batch)
    handles = [
        layer.register_forward_pre_hook(capture.hook(i), with_kwargs=True)
        for i, layer in enumerate(decoder)
    ]
    try:
        out = adapter.model(
            **batch.inputs,
            position_ids=positions,
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=1,
        )
    finally:
        for handle in handles:
            handle.remove()
        capture.previous_input = None
        reset_rope_state(adapter)
    result = SweepOutput()
    result.first_logits[BASE] = out.logits[:, -1].float()
    keep_kv = max_new_tokens > 1
    branch_logits, text_kv = (
        _recompute_branches(adapter, ks, capture, cache, keep_kv) if ks else (None, {})
    )
    for i, k in enumerate(ks):
        result.first_logits[k] = branch_logits[i * len(batch) : (i + 1) * len(batch)]
    first = torch.cat([result.first_logits[k].argmax(-1) for k in [*ks, BASE]])
    tokens = _decode(adapter, ks, cache, text_kv, capture.valid, positions, first, max_new_tokens)
    stop = set(adapter.stop_token_ids())
    for i, k in enumerate([*ks, BASE]):
        rows = tokens[i * len(batch) : (i + 1) * len(batch)].tolist()
        result.answers[k] = [_cut(row, stop) for row in rows]
    return result


def _recompute_branches(
    adapter: ModelAdapter, ks: list[int], capture: _Capture, cache: Any, keep_kv: bool
) -> tuple[torch.Tensor, dict[int, Prefix]]:
    """Layers k..L-1 for every branch on the kept positions after the shared prefix, batched
    across branches per layer; returns the first-token logits and each layer's branch cache."""
    decoder = adapter.decoder_layers()
    config = decoder[0].self_attn.config
    cos, sin = capture.layer_args["position_embeddings"]
    position_ids = capture.layer_args.get("position_ids")
    shared = capture.keep[ks[0]].shared
    batch = capture.keep[ks[0]].index.shape[0]
    hidden = rows_cos = rows_sin = rows_pos = rows_valid = mask = None
    text_kv: dict[int, Prefix] = {}
    for j in range(ks[0], len(decoder)):
        if j in capture.entry:
            plan = capture.keep[j]
            index = plan.index[:, shared:]
            hidden = _cat(hidden, capture.entry.pop(j))
            rows_cos = _cat(rows_cos, gather_positions(cos, index))
            rows_sin = _cat(rows_sin, gather_positions(sin, index))
            rows_valid = _cat(rows_valid, plan.valid)
            if isinstance(position_ids, torch.Tensor):
                rows_pos = _cat(rows_pos, gather_positions(position_ids, index))
            mask = build_mask(config, rows_valid, hidden.shape[1], shared, hidden.dtype)
        layer_cache = cache.layers[j]
        kv = _SharedPrefixKV(
            layer_cache.keys[:, :, :shared],
            layer_cache.values[:, :, :shared],
            hidden.shape[0] // batch,
        )
        hidden = decoder[j](
            hidden,
            attention_mask=mask,
            position_embeddings=(rows_cos, rows_sin),
            position_ids=rows_pos,
            past_key_values=kv,
            use_cache=True,
        )
        if keep_kv:  # only decoding needs them; single-token sweeps save the memory
            text_kv[j] = Prefix(kv.keys, kv.values, valid=capture.keep[ks[0]].valid)
    last = adapter.final_norm()(hidden[:, -1:])
    return adapter.lm_head()(last)[:, -1].float(), text_kv


def _cat(a: torch.Tensor | None, b: torch.Tensor | None) -> torch.Tensor | None:
    if b is None:
        return a
    return b if a is None else torch.cat([a, b])


def _decode(
    adapter: ModelAdapter,
    ks: list[int],
    cache: Any,
    text_kv: dict[int, Prefix],
    valid: torch.Tensor,
    positions: torch.Tensor,
    first: torch.Tensor,
    max_new_tokens: int,
) -> torch.Tensor:
    """(N, max_new_tokens) greedy tokens for all branch rows, decoded as one batch."""
    batch = valid.shape[0]
    n_branches = len(ks) + 1
    rows = n_branches * batch
    tokens = [first]
    stop = torch.tensor(adapter.stop_token_ids(), device=first.device)
    finished = torch.isin(first, stop)
    if max_new_tokens <= 1 or bool(finished.all()):
        return torch.stack(tokens, dim=1)
    decoder = adapter.decoder_layers()
    full = [Prefix(keys=layer.keys, values=layer.values, valid=valid) for layer in cache.layers]
    text = [text_kv.get(j) for j in range(len(decoder))]
    n_text = [batch * sum(1 for k in ks if k <= j) for j in range(len(decoder))]
    branch_cache = BranchCache(text, full, n_text, rows, max_new_tokens - 1)
    step_positions = next_positions(positions, n_branches)
    configs = list(
        {id(layer.self_attn.config): layer.self_attn.config for layer in decoder}.values()
    )
    with branch_attention(configs):
        for step in range(max_new_tokens - 1):
            out = adapter.model(
                input_ids=tokens[-1][:, None],
                position_ids=step_positions + step,
                past_key_values=branch_cache,
                use_cache=True,
            )
            branch_cache.step += 1
            token = out.logits[:, -1].argmax(-1)
            tokens.append(token)
            finished |= torch.isin(token, stop)
            if bool(finished.all()):
                break
    return torch.stack(tokens, dim=1)


@torch.no_grad()
def naive_sweep(
    adapter: ModelAdapter,
    batch: PreparedBatch,
    layers: list[int],
    max_new_tokens: int = 1,
    mode: Mode = "drop",
    keep_ratio: float | None = None,
) -> SweepOutput:
    """The reference: the baseline and each k run on their own (forward, then `generate`)."""
    result = SweepOutput()
    positions = generation_positions(adapter, batch)
    for k in [*_swept(adapter, layers, keep_ratio), BASE]:
        level = adapter.num_layers if k == BASE else k
        with truncate(adapter, level, batch, mode=mode, keep_ratio=keep_ratio):
            out = adapter.model(**batch.inputs, position_ids=positions, logits_to_keep=1)
        result.first_logits[k] = out.logits[:, -1].float()
        if max_new_tokens <= 1:
            stop = set(adapter.stop_token_ids())
            result.answers[k] = [_cut([int(t)], stop) for t in out.logits[:, -1].argmax(-1)]
        else:
            with truncate(adapter, level, batch, mode=mode, keep_ratio=keep_ratio):
                result.answers[k] = adapter.generate_ids(batch, max_new_tokens)
        reset_rope_state(adapter)
    return result

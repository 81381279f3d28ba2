"""Image-token truncation from layer k on, as a context manager around any forward or generate.

    with truncate(adapter, k, batch=batch):
        logits = adapter.model(**batch.inputs, position_ids=...).logits    # or adapter.generate(...)

Forward pre-hooks on layers >= k (TransformerLens style, always removed on exit) rewrite what
each of those layers is called with — its own arguments, so families with one rotary table per
layer type (Gemma 3) keep theirs (see `layer_calls`):

- `drop` (default): at layer k's entry every removed image position leaves the hidden states;
  each later layer gets its rotary embeddings and position ids gathered at the kept positions
  and a mask built over them (`masks.layer_mask`, sliding windows counted in original
  positions), so text keeps its original positions and the KV cache of layers >= k holds text
  only. Logits come out for the kept positions only; the last one is still the last prompt
  position (`Truncation.plan` maps them back).
- `mask`: nothing is removed; layers >= k get a mask in which removed image keys are invisible
  (each image query still sees itself, so no softmax row is empty). This is the semantics of the
  paper's and FastV's code; on text positions it equals `drop` (tested to 1e-5).
- a token strategy (`cliffscope.strategies`) decides which image tokens stay: `DropAll` none,
  `FastV` the ones the last prompt position attends to most at layer k - 1 (read by a kernel
  tap). The selection is made in the first forward (the prompt) and pinned, so cached and
  uncached generation agree.

Cached generation works with `DynamicCache` (it tolerates different lengths per layer): a call
whose layer-k cache is empty is a fresh sequence (prefill, or an uncached step) and drops;
later calls only add text tokens, whose mask is the kept prefix plus the new tokens. Features
a family injects into decoder layers at image positions (Qwen3-VL deepstack) follow the kept
image rows (`models.injection`).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import torch

from cliffscope.engines.keep import KeepPlan, LastRowTap, compose, extend_valid
from cliffscope.engines.layer_calls import gathered_kwargs, hidden_of, take, with_hidden
from cliffscope.engines.masks import layer_mask
from cliffscope.engines.stages import BatchFacts, Choice, choose, identity_slots, pad_to, stage_plan
from cliffscope.errors import CliffscopeError
from cliffscope.models import compat
from cliffscope.models.kernel import tapping

if TYPE_CHECKING:
    from cliffscope.models.base import ModelAdapter, PreparedBatch
    from cliffscope.strategies.base import TokenStrategy

Mode = Literal["drop", "mask"]
MODES: tuple[str, ...] = ("drop", "mask")


def resolve_strategy(strategy: TokenStrategy | None, keep_ratio: float | None) -> TokenStrategy:
    """The strategy object, from an explicit one or the `keep_ratio` shortcut (FastV)."""
    from cliffscope.strategies.registry import from_run_params

    if strategy is not None:
        return strategy
    return from_run_params({"keep_ratio": keep_ratio})


@dataclass
class _Step:
    """What layers of one stage see in one forward call: keys, queries and, for drop, the
    gather."""

    valid: torch.Tensor  # (B, K) keys that are not padding
    key_positions: torch.Tensor  # (B, K) original positions of the keys
    query_positions: torch.Tensor  # (B, Q) original positions of the queries
    dtype: torch.dtype
    blocked: torch.Tensor | None = None  # (B, K) mask mode: removed image keys
    key_blocks: torch.Tensor | None = None  # (B, K) both-ways attention blocks (Gemma 3)
    query_blocks: torch.Tensor | None = None  # (B, Q)
    index: torch.Tensor | None = None  # (B, T) drop mode, fresh call: kept positions
    length: int = 0  # sequence length `index` points into
    plan: KeepPlan | None = None  # drop mode, fresh call: the stage's plan (original positions)
    masks: dict[int | None, Any] = field(default_factory=dict)


@dataclass
class _Stage:
    """One stage of the strategy: its layer, its pinned choice, its last plan and step."""

    layer: int
    choice: Choice | None = None  # fixed by the first forward (the prompt)
    plan: KeepPlan | None = None  # drop: the composed plan of the last fresh forward
    blocked: torch.Tensor | None = None  # mask: (B, prompt) image positions hidden so far
    step: _Step | None = None


class Truncation:
    """Hooks that remove (or mask) image tokens from layer `k` on for one prepared batch."""

    def __init__(
        self,
        adapter: ModelAdapter,
        k: int,
        batch: PreparedBatch,
        mode: Mode = "drop",
        strategy: TokenStrategy | None = None,
        keys: list[str] | None = None,
    ) -> None:
        n_layers = adapter.num_layers
        if not 0 <= k <= n_layers:
            raise CliffscopeError(f"truncation layer {k} outside 0..{n_layers}")
        if mode not in MODES:
            raise CliffscopeError(f"unknown truncation mode {mode!r}", hint="drop or mask")
        self.strategy = resolve_strategy(strategy, None)
        if mode == "mask" and self.strategy.merges_tokens:
            raise CliffscopeError(
                f"{self.strategy.describe()} merges tokens, which a mask cannot express",
                hint='use mode "drop"',
            )
        layers = self.strategy.stage_layers(k) if k < n_layers else []
        check_stage_layers(layers, n_layers, self.strategy)
        self.adapter, self.k, self.mode, self.batch, self.keys = adapter, k, mode, batch, keys
        self.stages = [_Stage(layer) for layer in layers]
        self.facts = BatchFacts(adapter, batch, [self.strategy], keys)
        self.windows = adapter.layer_windows()
        self.image = self.facts.image
        self.prompt_valid = batch.attention_mask.bool()
        self.blocks = adapter.attention_blocks(batch)
        self._fresh_length = 0
        self._tap: LastRowTap | None = None
        self._stack = contextlib.ExitStack()

    @property
    def plan(self) -> KeepPlan | None:
        """Kept positions of the last fresh forward after the last stage (drop mode)."""
        return self.stages[-1].plan if self.stages else None

    @property
    def selected(self) -> torch.Tensor | None:
        """(B, prompt) image positions still present after the last stage (for merges: the
        positions pooled tokens sit at), fixed by the first forward."""
        if not self.stages or self.stages[-1].choice is None:
            return None
        last = self.stages[-1]
        if self.mode == "mask":
            return self.image & ~last.blocked
        present = torch.zeros_like(self.image)
        prompt = self.image.shape[1]
        index = last.plan.index.clamp(max=prompt - 1)
        present.scatter_(1, index, last.plan.valid & (last.plan.index < prompt))
        return present & self.image

    # ---- hooks ------------------------------------------------------------------------------
    def __enter__(self) -> Truncation:
        if not self.stages:
            return self  # k = L: the untouched model
        first = self.stages[0].layer
        if self.strategy.needs_attention:
            self._tap = LastRowTap(self.adapter, {s.layer - 1 for s in self.stages})
            self._stack.enter_context(tapping(self._tap))
        self._stack.enter_context(self.facts.vision_context())
        layers = self.adapter.decoder_layers()
        for index in range(first, len(layers)):
            handle = layers[index].register_forward_pre_hook(self._hook(index), with_kwargs=True)
            self._stack.callback(handle.remove)
        injections = self.adapter.injections()
        if injections is not None:
            self._stack.enter_context(injections.following(first, self.kept_rows))
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()
        self._tap = None

    def _stage_of(self, layer: int) -> int:
        return max(s for s, stage in enumerate(self.stages) if stage.layer <= layer)

    def kept_rows(self, layer: int) -> KeepPlan | None:
        """The plan of the rows `layer` holds in the current call (drop mode); None when it
        holds every position (mask mode, or a cached step of new tokens only)."""
        step = self.stages[self._stage_of(layer)].step
        return None if step is None else step.plan

    def _hook(self, index: int):
        def enter(module: Any, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
            s = self._stage_of(index)
            stage = self.stages[s]
            if index == stage.layer:
                hidden = hidden_of(args, kwargs)
                past = compat.cache_length(compat.layer_cache(kwargs), index)
                if past == 0:
                    stage.step, relative = self._fresh(s, hidden.shape[1], hidden.dtype)
                    if relative is not None:
                        args, kwargs = with_hidden(args, kwargs, relative.gather(hidden))
                else:
                    stage.step = self._continued(s, past, hidden.shape[1], hidden.dtype)
            step = stage.step
            updates = {"attention_mask": self._mask(step, self.windows[index])}
            if step.index is not None:
                updates.update(gathered_kwargs(kwargs, step.index, step.length))
            return args, {**kwargs, **updates}

        return enter

    def _mask(self, step: _Step, window: int | None) -> Any:
        if window not in step.masks:
            step.masks[window] = layer_mask(
                self.adapter.attention_kernel,
                step.valid,
                step.key_positions,
                step.query_positions,
                step.dtype,
                window=window,
                blocked=step.blocked,
                query_blocks=step.query_blocks,
                key_blocks=step.key_blocks,
            )
        return step.masks[window]

    # ---- what layers of a stage see ---------------------------------------------------------
    def _fresh(self, s: int, length: int, dtype: torch.dtype) -> tuple[_Step, KeepPlan | None]:
        """A forward over positions 0..L-1 (the prompt, and uncached, the tokens so far); at
        stage s > 0 `length` is the slots the previous stage left. Returns the step and the
        plan that maps the entering hidden states onto the kept slots (drop mode)."""
        prompt = self.image.shape[1]
        stage = self.stages[s]
        if s == 0:
            if length < prompt:
                raise CliffscopeError(
                    f"truncation got a fresh sequence of {length} positions for a "
                    f"{prompt}-token prompt"
                )
            self._fresh_length = length
        total = self._fresh_length
        earlier = self.stages[s - 1] if s else None
        if s == 0 or self.mode == "mask":
            index_in, valid_in = identity_slots(self.prompt_valid, total)
            fillers = None
        else:
            index_in, valid_in, fillers = (
                earlier.plan.index,
                earlier.plan.valid,
                earlier.plan.fillers(),
            )
        removed = earlier.blocked if earlier is not None and self.mode == "mask" else None
        if stage.choice is None:
            stage.choice = self._choose(s, index_in, valid_in, total - prompt, removed)
        blocks = self._blocks(total)
        if self.mode == "mask":
            kept = pad_to(stage.choice.selected, prompt)
            stage.blocked = (
                self.image & ~kept if removed is None else removed | (self.image & ~kept)
            )
            positions = index_in
            dropped = pad_to(stage.blocked, total)
            step = _Step(
                valid_in, positions, positions, dtype, blocked=dropped,
                key_blocks=blocks, query_blocks=blocks,
            )  # fmt: skip
            return step, None
        relative = stage_plan(stage.choice, index_in, valid_in, self.image, fillers)
        plan = relative if s == 0 else compose(earlier.plan, relative)
        stage.plan = plan
        kept_blocks = None if blocks is None else take(blocks, plan.index, 1)
        step = _Step(
            plan.valid, plan.index, plan.index, dtype, index=plan.index, length=total, plan=plan,
            key_blocks=kept_blocks, query_blocks=kept_blocks,
        )  # fmt: skip
        return step, relative

    def _choose(
        self,
        s: int,
        index_in: torch.Tensor,
        valid_in: torch.Tensor,
        generated: int,
        removed: torch.Tensor | None,
    ) -> Choice:
        """The strategy's pick at stage s over the prompt's input slots (pinned afterwards)."""
        n_slots = index_in.shape[1] - generated
        layer = self.stages[s].layer
        attention = None
        if self.strategy.needs_attention:
            rows = self._tap.rows if self._tap is not None else {}
            if layer - 1 not in rows:
                raise CliffscopeError(f"layer {layer - 1} ran without input before layer {layer}")
            attention = rows[layer - 1][:, :n_slots].to(self.image.device)
        inputs = self.facts.inputs(
            self.strategy, s, layer, index_in[:, :n_slots], valid_in[:, :n_slots], attention,
            removed=removed,
        )  # fmt: skip
        return choose(self.strategy, inputs)

    def _blocks(self, length: int) -> torch.Tensor | None:
        """Both-ways blocks over a sequence of `length` (generated positions are in none)."""
        if self.blocks is None:
            return None
        out = self.blocks.new_zeros(self.blocks.shape[0], length)
        out[:, : self.blocks.shape[1]] = self.blocks[:, :length]
        return out

    def _continued(self, s: int, past: int, n_new: int, dtype: torch.dtype) -> _Step:
        """A cached step: `n_new` text tokens after `past` cached positions of stage s's layer."""
        if self._fresh_length == 0:
            raise CliffscopeError("a cached step reached a truncation that saw no prompt")
        stage = self.stages[s]
        device = self.image.device
        batch = self.image.shape[0]
        if self.mode == "mask":
            total = past + n_new
            positions = torch.arange(total, device=device).expand(batch, total)
            blocked = torch.zeros(batch, total, dtype=torch.bool, device=device)
            blocked[:, : self.image.shape[1]] = stage.blocked
            valid = extend_valid(self.prompt_valid, total)
            blocks = self._blocks(total)
            return _Step(
                valid, positions, positions[:, past:], dtype, blocked=blocked,
                key_blocks=blocks, query_blocks=None if blocks is None else blocks[:, past:],
            )  # fmt: skip
        plan = stage.plan
        generated = past - plan.length + n_new  # tokens after the fresh sequence, these included
        tail = self._fresh_length + torch.arange(generated, device=device).expand(batch, generated)
        keys = torch.cat([plan.index, tail], dim=1)
        valid = torch.cat([plan.valid, torch.ones_like(tail, dtype=torch.bool)], dim=1)
        blocks = self._blocks(self._fresh_length + generated)
        key_blocks = None if blocks is None else take(blocks, keys, 1)
        return _Step(
            valid, keys, keys[:, -n_new:], dtype,
            key_blocks=key_blocks, query_blocks=None if key_blocks is None else key_blocks[:, -n_new:],
        )  # fmt: skip


def check_stage_layers(layers: list[int], n_layers: int, strategy: TokenStrategy) -> None:
    """Every stage must fall inside the decoder."""
    outside = [layer for layer in layers if not 0 <= layer < n_layers]
    if outside:
        raise CliffscopeError(
            f"{strategy.describe()} acts at layer(s) {outside}, outside 0..{n_layers - 1}",
            hint=f"the decoder has {n_layers} layers",
        )


def truncate(
    adapter: ModelAdapter,
    k: int,
    batch: PreparedBatch,
    mode: Mode = "drop",
    keep_ratio: float | None = None,
    strategy: TokenStrategy | None = None,
    keys: list[str] | None = None,
) -> Truncation:
    """Context manager: inside it, the model runs with image tokens truncated from layer `k`.

    `strategy` says which image tokens stay (default: none); `keep_ratio` is the FastV shortcut.
    `keys` (sample ids) seed strategies that draw at random.
    """
    return Truncation(
        adapter, k, batch, mode=mode, strategy=resolve_strategy(strategy, keep_ratio), keys=keys
    )

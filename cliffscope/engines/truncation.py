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

from cliffscope.engines.keep import KeepPlan, LastRowTap, extend_valid, image_mask, keep_plan
from cliffscope.engines.layer_calls import gathered_kwargs, hidden_of, take, with_hidden
from cliffscope.engines.masks import layer_mask
from cliffscope.errors import CliffscopeError
from cliffscope.models import compat
from cliffscope.models.kernel import tapping
from cliffscope.strategies.base import SelectionInputs

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
    """What layers >= k see in one forward call: keys, queries and, for drop, the gather."""

    valid: torch.Tensor  # (B, K) keys that are not padding
    key_positions: torch.Tensor  # (B, K) original positions of the keys
    query_positions: torch.Tensor  # (B, Q) original positions of the queries
    dtype: torch.dtype
    blocked: torch.Tensor | None = None  # (B, K) mask mode: removed image keys
    key_blocks: torch.Tensor | None = None  # (B, K) both-ways attention blocks (Gemma 3)
    query_blocks: torch.Tensor | None = None  # (B, Q)
    index: torch.Tensor | None = None  # (B, T) drop mode, fresh call: kept positions
    length: int = 0  # sequence length `index` points into
    masks: dict[int | None, Any] = field(default_factory=dict)


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
        if k < n_layers:
            self.strategy.check_layer(k)
        self.adapter, self.k, self.mode, self.batch, self.keys = adapter, k, mode, batch, keys
        self.windows = adapter.layer_windows()
        self.image = image_mask(batch)
        self.prompt_valid = batch.attention_mask.bool()
        self.blocks = adapter.attention_blocks(batch)
        #: image positions the strategy kept (B, S), fixed by the first forward
        self.selected: torch.Tensor | None = None
        #: kept positions of the last fresh forward (drop mode)
        self.plan: KeepPlan | None = None
        self._fresh_length = 0
        self._step: _Step | None = None
        self._tap: LastRowTap | None = None
        self._stack = contextlib.ExitStack()

    # ---- hooks ------------------------------------------------------------------------------
    def __enter__(self) -> Truncation:
        layers = self.adapter.decoder_layers()
        if self.k >= len(layers):
            return self  # k = L: the untouched model
        if self.strategy.needs_attention:
            self._tap = LastRowTap(self.adapter, {self.k - 1})
            self._stack.enter_context(tapping(self._tap))
        for index in range(self.k, len(layers)):
            handle = layers[index].register_forward_pre_hook(self._hook(index), with_kwargs=True)
            self._stack.callback(handle.remove)
        injections = self.adapter.injections()
        if injections is not None:
            self._stack.enter_context(injections.following(self.k, self.kept_rows))
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()
        self._tap = None

    def kept_rows(self) -> torch.Tensor | None:
        """Original positions of the rows layers >= k hold in the current call (drop mode);
        None when they hold every position (mask mode, or a cached step of new tokens only)."""
        step = self._step
        return None if step is None else step.index

    def _hook(self, index: int):
        def enter(module: Any, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
            if index == self.k:
                hidden = hidden_of(args, kwargs)
                past = compat.cache_length(compat.layer_cache(kwargs), index)
                length = hidden.shape[1]
                self._step = self._fresh(length, hidden.dtype) if past == 0 else None
                if self._step is None:
                    self._step = self._continued(past, length, hidden.dtype)
                if self._step.index is not None:
                    args, kwargs = with_hidden(args, kwargs, take(hidden, self._step.index, 1))
            step = self._step
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

    # ---- what layers >= k see ---------------------------------------------------------------
    def _fresh(self, length: int, dtype: torch.dtype) -> _Step:
        """A forward over positions 0..length-1: the prompt (and, uncached, the tokens so far)."""
        prompt = self.image.shape[1]
        if length < prompt:
            raise CliffscopeError(
                f"truncation got a fresh sequence of {length} positions for a {prompt}-token prompt"
            )
        device = self.image.device
        valid = extend_valid(self.prompt_valid, length)
        image = torch.zeros(valid.shape[0], length, dtype=torch.bool, device=device)
        image[:, :prompt] = self.image
        if self.selected is None:
            self.selected = self._select(valid[:, :prompt])
        dropped = image.clone()
        dropped[:, :prompt] &= ~self.selected
        self._fresh_length = length
        blocks = self._blocks(length)
        if self.mode == "mask":
            positions = torch.arange(length, device=device).expand(valid.shape[0], length)
            return _Step(
                valid, positions, positions, dtype, blocked=dropped,
                key_blocks=blocks, query_blocks=blocks,
            )  # fmt: skip
        plan = keep_plan(~dropped, valid, image)
        self.plan = plan
        kept_blocks = None if blocks is None else take(blocks, plan.index, 1)
        return _Step(
            plan.valid, plan.index, plan.index, dtype, index=plan.index, length=length,
            key_blocks=kept_blocks, query_blocks=kept_blocks,
        )  # fmt: skip

    def _blocks(self, length: int) -> torch.Tensor | None:
        """Both-ways blocks over a sequence of `length` (generated positions are in none)."""
        if self.blocks is None:
            return None
        out = self.blocks.new_zeros(self.blocks.shape[0], length)
        out[:, : self.blocks.shape[1]] = self.blocks[:, :length]
        return out

    def _continued(self, past: int, n_new: int, dtype: torch.dtype) -> _Step:
        """A cached step: `n_new` text tokens after `past` cached positions of layer k."""
        if self._fresh_length == 0:
            raise CliffscopeError("a cached step reached a truncation that saw no prompt")
        device = self.image.device
        batch = self.image.shape[0]
        if self.mode == "mask":
            total = past + n_new
            positions = torch.arange(total, device=device).expand(batch, total)
            blocked = torch.zeros(batch, total, dtype=torch.bool, device=device)
            blocked[:, : self._fresh_length] = self._blocked_prefix()
            valid = extend_valid(self.prompt_valid, total)
            blocks = self._blocks(total)
            return _Step(
                valid, positions, positions[:, past:], dtype, blocked=blocked,
                key_blocks=blocks, query_blocks=None if blocks is None else blocks[:, past:],
            )  # fmt: skip
        plan = self.plan
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

    def _blocked_prefix(self) -> torch.Tensor:
        prompt = self.image.shape[1]
        blocked = torch.zeros(
            self.image.shape[0], self._fresh_length, dtype=torch.bool, device=self.image.device
        )
        blocked[:, :prompt] = self.image & ~self.selected
        return blocked

    def _select(self, valid: torch.Tensor) -> torch.Tensor:
        attention = None
        if self.strategy.needs_attention:
            rows = self._tap.rows if self._tap is not None else {}
            if self.k - 1 not in rows:
                raise CliffscopeError(f"layer {self.k - 1} ran without input before layer {self.k}")
            attention = rows[self.k - 1][:, : self.image.shape[1]].to(self.image.device)
        inputs = SelectionInputs(
            layer=self.k, image=self.image, valid=valid, attention=attention, keys=self.keys
        )
        return self.strategy.select(inputs).to(self.image.device) & self.image


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

"""Image-token truncation from layer k on, as a context manager around any forward or generate.

    with truncate(adapter, k, batch=batch):
        logits = adapter.model(**batch.inputs, position_ids=...).logits    # or adapter.generate(...)

Decoder layers all receive the same full-length hidden states, mask, rotary (cos, sin) and
position ids; forward pre-hooks on layers >= k rewrite them (TransformerLens style, always
removed on exit):

- `drop` (default): at layer k's entry every image position leaves the hidden states; the
  mask, cos/sin and position ids are sliced to the kept positions, so text keeps its original
  positions and the KV cache of layers >= k holds text only. Later layers get hidden states that
  are already short and reuse the sliced arguments. Logits come out for the kept positions only;
  the last one is still the last prompt position (`Truncation.plan` maps them back).
- `mask`: nothing is removed; layers >= k get a mask in which image keys are invisible (each
  image query still sees itself, so no softmax row is empty). This is the semantics of the
  paper's and FastV's code; on text positions it equals `drop` (tested to 1e-5).
- `keep_ratio=R`: the round(R * n_image) image tokens the last prompt position attends to most
  at layer k-1 (head mean) stay (FastV). The selection is made in the first forward (the
  prompt) and pinned, so cached and uncached generation agree.

Cached generation works with `DynamicCache` (it tolerates different lengths per layer): a call
whose layer-k cache is empty is a fresh sequence (prefill, or an uncached step) and drops;
later calls only add text tokens, whose mask is the kept prefix plus the new tokens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import torch

from cliffscope.engines.keep import (
    KeepPlan,
    build_mask,
    check_keep_ratio,
    extend_valid,
    gather_positions,
    image_mask,
    keep_plan,
    last_row_attention,
    select_image,
)
from cliffscope.errors import CliffscopeError

if TYPE_CHECKING:
    from cliffscope.models.base import ModelAdapter, PreparedBatch

Mode = Literal["drop", "mask"]
MODES: tuple[str, ...] = ("drop", "mask")


class Truncation:
    """Hooks that remove (or mask) image tokens from layer `k` on for one prepared batch."""

    def __init__(
        self,
        adapter: ModelAdapter,
        k: int,
        batch: PreparedBatch,
        mode: Mode = "drop",
        keep_ratio: float | None = None,
    ) -> None:
        n_layers = adapter.num_layers
        if not 0 <= k <= n_layers:
            raise CliffscopeError(f"truncation layer {k} outside 0..{n_layers}")
        if mode not in MODES:
            raise CliffscopeError(f"unknown truncation mode {mode!r}", hint="drop or mask")
        check_keep_ratio(keep_ratio, k)
        self.adapter = adapter
        self.k = k
        self.mode = mode
        self.keep_ratio = keep_ratio
        self.batch = batch
        self.config = adapter.decoder_layers()[0].self_attn.config
        self.image = image_mask(batch)
        self.prompt_valid = batch.attention_mask.bool()
        #: image positions kept by keep_ratio (B, S), fixed by the first forward
        self.selected: torch.Tensor | None = None
        #: kept positions of the last fresh forward (drop mode)
        self.plan: KeepPlan | None = None
        self._prefix_valid: torch.Tensor | None = None
        self._prefix_blocked: torch.Tensor | None = None
        self._updates: dict[str, Any] = {}
        self._rank_input: torch.Tensor | None = None
        self._handles: list[Any] = []

    # ---- hooks ------------------------------------------------------------------------------
    def __enter__(self) -> Truncation:
        layers = self.adapter.decoder_layers()
        if self.k >= len(layers):
            return self  # k = L: the untouched model
        if self.keep_ratio is not None:
            self._handles.append(
                layers[self.k - 1].register_forward_pre_hook(self._remember_input, with_kwargs=True)
            )
        for index in range(self.k, len(layers)):
            hook = self._enter_layer_k if index == self.k else self._enter_later_layer
            self._handles.append(layers[index].register_forward_pre_hook(hook, with_kwargs=True))
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._rank_input = None

    def _remember_input(self, module: Any, args: tuple, kwargs: dict) -> None:
        if self.selected is None:
            self._rank_input = _hidden(args, kwargs)

    def _enter_later_layer(self, module: Any, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        return args, {**kwargs, **self._updates}

    def _enter_layer_k(self, module: Any, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        hidden = _hidden(args, kwargs)
        cache = kwargs.get("past_key_values")
        past = cache.get_seq_length(self.k) if cache is not None else 0
        if past == 0:
            hidden, self._updates = self._fresh(hidden, kwargs)
        else:
            self._updates = self._continued(hidden, past)
        if args:
            args = (hidden, *args[1:])
        else:
            kwargs = {**kwargs, "hidden_states": hidden}
        return args, {**kwargs, **self._updates}

    # ---- what layers >= k see ---------------------------------------------------------------
    def _fresh(self, hidden: torch.Tensor, kwargs: dict) -> tuple[torch.Tensor, dict[str, Any]]:
        """A forward over positions 0..q-1: the prompt (and, uncached, the tokens so far)."""
        length = hidden.shape[1]
        prompt = self.image.shape[1]
        if length < prompt:
            raise CliffscopeError(
                f"truncation got a fresh sequence of {length} positions for a {prompt}-token prompt"
            )
        valid = extend_valid(self.prompt_valid, length)
        image = torch.zeros(hidden.shape[0], length, dtype=torch.bool, device=hidden.device)
        image[:, :prompt] = self.image
        dropped = image
        if self.keep_ratio is not None:
            if self.selected is None:
                self.selected = self._select(kwargs["position_embeddings"], valid)
            dropped = image.clone()
            dropped[:, :prompt] &= ~self.selected
        if self.mode == "mask":
            self._prefix_valid, self._prefix_blocked = valid, dropped
            mask = build_mask(self.config, valid, length, 0, hidden.dtype, blocked=dropped)
            return hidden, {"attention_mask": mask}
        plan = keep_plan(~dropped, valid, image)
        self.plan, self._prefix_valid = plan, plan.valid
        cos, sin = kwargs["position_embeddings"]
        updates: dict[str, Any] = {
            "attention_mask": build_mask(self.config, plan.valid, plan.length, 0, hidden.dtype),
            "position_embeddings": (
                gather_positions(cos, plan.index),
                gather_positions(sin, plan.index),
            ),
        }
        position_ids = kwargs.get("position_ids")
        if isinstance(position_ids, torch.Tensor) and position_ids.shape[-1] == length:
            updates["position_ids"] = gather_positions(position_ids, plan.index)
        return gather_positions(hidden, plan.index), updates

    def _continued(self, hidden: torch.Tensor, past: int) -> dict[str, Any]:
        """A cached step: new text tokens after `past` cached (kept) positions."""
        if self._prefix_valid is None:
            raise CliffscopeError("a cached step reached a truncation that saw no prompt")
        length = past + hidden.shape[1]
        valid = extend_valid(self._prefix_valid, length)
        blocked = None
        if self.mode == "mask":
            blocked = torch.zeros_like(valid)
            blocked[:, : self._prefix_blocked.shape[1]] = self._prefix_blocked
        mask = build_mask(self.config, valid, hidden.shape[1], past, hidden.dtype, blocked=blocked)
        return {"attention_mask": mask}

    def _select(self, position_embeddings: tuple, valid: torch.Tensor) -> torch.Tensor:
        if self._rank_input is None:
            raise CliffscopeError(f"layer {self.k - 1} ran without input before layer {self.k}")
        scores = last_row_attention(
            self.adapter.decoder_layers()[self.k - 1],
            self._rank_input,
            position_embeddings,
            valid,
        )
        prompt = self.image.shape[1]
        return select_image(self.image, scores[:, :prompt], float(self.keep_ratio))


def truncate(
    adapter: ModelAdapter,
    k: int,
    batch: PreparedBatch,
    mode: Mode = "drop",
    keep_ratio: float | None = None,
) -> Truncation:
    """Context manager: inside it, the model runs with image tokens truncated from layer `k`."""
    return Truncation(adapter, k, batch, mode=mode, keep_ratio=keep_ratio)


def _hidden(args: tuple, kwargs: dict) -> torch.Tensor:
    return args[0] if args else kwargs["hidden_states"]

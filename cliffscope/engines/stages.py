"""One stage of a token strategy: what it sees, what it picks, and the plan that follows.

Shared by the per-k truncation hooks (`truncation.py`) and the prefix-shared branch engine
(`branches.py`), so both remove (and merge) exactly the same tokens. A stage's INPUT SLOTS are
the sequence entering its layer: at stage 0 the prompt's positions, at a later stage the slots
the previous stage kept (`index_in` maps them to original positions). The strategy sees them
as `SelectionInputs`; its choice becomes a `KeepPlan` over those slots, composed with the
earlier stages into one plan over original positions (`keep.compose`).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from cliffscope.engines.keep import KeepPlan, extend_valid, image_mask, keep_plan
from cliffscope.engines.layer_calls import take
from cliffscope.errors import CliffscopeError
from cliffscope.strategies.base import Merges, SelectionInputs

if TYPE_CHECKING:
    from cliffscope.models.base import ModelAdapter, PreparedBatch
    from cliffscope.strategies.base import TokenStrategy


@dataclass
class Choice:
    """A stage's pick over its input slots (prompt part): kept image slots and merges."""

    selected: torch.Tensor  # (B, T) boolean
    merges: Merges | None


class BatchFacts:
    """Per-batch facts strategies may need, computed once: image positions, original image
    counts, grids (for `needs_grids`), and the vision tower's saliency (for `needs_vision`,
    recorded during the forward by `vision_context`)."""

    def __init__(
        self,
        adapter: ModelAdapter,
        batch: PreparedBatch,
        strategies: list[TokenStrategy],
        keys: list[str] | None,
    ) -> None:
        self.adapter, self.batch, self.keys = adapter, batch, keys
        self.image = image_mask(batch)
        self.valid = batch.attention_mask.bool()
        self.image_counts = [len(g.image) for g in batch.groups]
        self.needs_grids = any(s.needs_grids for s in strategies)
        self.needs_vision = any(s.needs_vision for s in strategies)
        if self.needs_vision:
            adapter.vision_saliency()  # refuses families it is not defined for, before any run
        self._grids: list[list[Any]] | None = None
        self._vision: Any = None

    def vision_context(self) -> contextlib.AbstractContextManager:
        """Record the vision tower's saliency during the forward (a no-op when unneeded)."""
        if not self.needs_vision:
            return contextlib.nullcontext()
        from cliffscope.models.saliency import recording

        self._vision = recording(self.adapter, self.batch)
        return self._vision

    def grids(self) -> list[list[Any]]:
        if self._grids is None:
            self._grids = [self.adapter.image_grids(self.batch, r) for r in range(len(self.batch))]
        return self._grids

    def vision_scores(self) -> torch.Tensor:
        if self._vision is None:
            raise CliffscopeError("a vision-ranked strategy ran without the tower's saliency")
        return self._vision.scores().to(self.image.device)

    def inputs(
        self,
        strategy: TokenStrategy,
        stage: int,
        layer: int,
        index_in: torch.Tensor,
        valid_in: torch.Tensor,
        attention: torch.Tensor | None,
        removed: torch.Tensor | None = None,
    ) -> SelectionInputs:
        """What `strategy` sees at `stage` over input slots `index_in` (original positions);
        `removed` (B, S): image positions an earlier stage hid (mask mode keeps every slot)."""
        rows = self.image.shape[0]
        if index_in.shape[0] != rows:
            raise CliffscopeError("stage inputs must have one row per prompt")
        image = extend_mask(self.image, int(index_in.max()) + 1)
        if removed is not None:
            image = image & ~extend_mask(removed, image.shape[1])
        slot_image = take(image, index_in, 1) & valid_in
        vision = None
        if strategy.needs_vision:
            scores = self.vision_scores()
            vision = take(pad_to(scores, image.shape[1]), index_in, 1)
        grids = None
        if strategy.needs_grids:
            if stage > 0:
                raise CliffscopeError(f"{strategy.describe()}: grids exist only at the first stage")
            grids = self.grids()
        return SelectionInputs(
            layer=layer,
            image=slot_image,
            valid=valid_in,
            attention=attention,
            keys=self.keys,
            vision=vision,
            grids=grids,
            image_counts=self.image_counts,
            stage=stage,
        )


def extend_mask(mask: torch.Tensor, length: int) -> torch.Tensor:
    """A (B, S) mask followed by False up to `length` (generated positions are not image)."""
    return pad_to(mask, length)


def pad_to(x: torch.Tensor, length: int) -> torch.Tensor:
    """(B, S) cut or zero-padded to (B, length)."""
    if x.shape[1] >= length:
        return x[:, :length]
    return torch.cat([x, x.new_zeros(x.shape[0], length - x.shape[1])], dim=1)


def choose(strategy: TokenStrategy, inputs: SelectionInputs) -> Choice:
    """The strategy's pick at one stage (always a subset of the image slots)."""
    selected = strategy.select(inputs).to(inputs.image.device) & inputs.image
    return Choice(selected=selected, merges=strategy.merges(inputs, selected))


def stage_plan(
    choice: Choice,
    index_in: torch.Tensor,
    valid_in: torch.Tensor,
    image: torch.Tensor,
    fillers: torch.Tensor | None = None,
) -> KeepPlan:
    """The plan over input slots that `choice` (made over the prompt's slots) gives: text and
    the selected image slots stay, fillers of an earlier stage go (new ones fill the rows)."""
    slot_image = take(extend_mask(image, int(index_in.max()) + 1), index_in, 1) & valid_in
    selected = pad_to(choice.selected, slot_image.shape[1])
    keep = ~slot_image | selected
    if fillers is not None:
        keep &= ~fillers
    return keep_plan(keep, valid_in, slot_image, choice.merges)


def identity_slots(prompt_valid: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Stage 0's input slots for a fresh sequence of `length`: positions 0..length-1."""
    valid = extend_valid(prompt_valid, length)
    index = torch.arange(length, device=valid.device).expand(valid.shape[0], length)
    return index, valid

"""`all`: every image token leaves at layer k (the paper's truncation)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cliffscope.strategies.base import SelectionInputs, TokenStrategy

if TYPE_CHECKING:
    import torch


class DropAll(TokenStrategy):
    name = "all"

    def kept(self, n_image: int) -> int:
        return 0

    def select(self, inputs: SelectionInputs) -> torch.Tensor:
        return inputs.image.new_zeros(inputs.image.shape)

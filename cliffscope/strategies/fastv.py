"""`fastv`: keep the image tokens the last prompt position attends to most at layer k - 1.

FastV (Chen et al., 2024) ranks image tokens by the attention the last position pays them in
the layer before pruning (mean over heads) and keeps the top round(R * n). The attention row
comes from the model's own query and key at that layer (a kernel tap, so any kernel works).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cliffscope.errors import CliffscopeError
from cliffscope.strategies.base import SelectionInputs, kept_count
from cliffscope.strategies.ranked import RankedStrategy, top_by_score

if TYPE_CHECKING:
    import torch

__all__ = ["FastV", "kept_count", "top_by_score"]


class FastV(RankedStrategy):
    name = "fastv"
    summary = "top budget x n image tokens by the last prompt position's attention at layer k-1"
    needs_attention = True

    @property
    def ratio(self) -> float:
        return self.budget

    def scores(self, inputs: SelectionInputs) -> torch.Tensor:
        if inputs.attention is None:
            raise CliffscopeError(f"fastv got no attention row from layer {inputs.layer - 1}")
        return inputs.attention

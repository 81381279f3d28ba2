"""`fastv`: keep the image tokens the last prompt position attends to most at layer k - 1.

FastV (Chen et al., 2024) ranks image tokens by the attention the last position pays them in
the layer before pruning (mean over heads) and keeps the top round(R * n). The attention row
comes from the model's own query and key at that layer (a kernel tap, so any kernel works).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cliffscope.errors import CliffscopeError
from cliffscope.strategies.base import (
    BUDGET,
    SelectionInputs,
    TokenStrategy,
    check_budget,
    kept_count,
)

if TYPE_CHECKING:
    import torch

__all__ = ["FastV", "kept_count", "top_by_score"]


def top_by_score(
    scores: torch.Tensor, image: torch.Tensor, counts: list[int], what: str
) -> torch.Tensor:
    """(B, S) boolean: per row, the `counts[row]` image positions with the highest score."""
    import torch

    if scores is None:
        raise CliffscopeError(f"{what}: the engine passed no scores to rank image tokens by")
    selected = torch.zeros_like(image)
    for row in range(image.shape[0]):
        positions = image[row].nonzero().squeeze(1)
        n_keep = min(counts[row], positions.numel())
        if n_keep:
            top = scores[row, positions].topk(n_keep).indices
            selected[row, positions[top]] = True
    return selected


class FastV(TokenStrategy):
    name = "fastv"
    summary = "top budget x n image tokens by the last prompt position's attention at layer k-1"
    parameters = (BUDGET,)
    needs_attention = True

    def __init__(self, budget: float) -> None:
        self.budget = check_budget(self.name, budget)

    @property
    def ratio(self) -> float:
        return self.budget

    def kept(self, n_image: int) -> int:
        return kept_count(self.budget, n_image)

    def select(self, inputs: SelectionInputs) -> torch.Tensor:
        counts = [self.kept(int(n)) for n in inputs.image.sum(dim=1).tolist()]
        if inputs.attention is None:
            raise CliffscopeError(f"fastv got no attention row from layer {inputs.layer - 1}")
        return top_by_score(inputs.attention, inputs.image, counts, "fastv")

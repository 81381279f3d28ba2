"""Strategies that keep a budget of the image tokens, and those that keep the top-scored ones."""

from __future__ import annotations

from abc import abstractmethod
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


def top_by_score(
    scores: torch.Tensor | None, image: torch.Tensor, counts: list[int], what: str
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


class BudgetStrategy(TokenStrategy):
    """Keeps round(budget x n) of a prompt's n image tokens."""

    parameters = (BUDGET,)

    def __init__(self, budget: float) -> None:
        self.budget = check_budget(self.name, budget)

    def kept(self, n_image: int) -> int:
        return kept_count(self.budget, n_image)


class RankedStrategy(BudgetStrategy):
    """Keeps the round(budget x n) image tokens of highest `scores` (per row, ties by topk)."""

    @abstractmethod
    def scores(self, inputs: SelectionInputs) -> torch.Tensor | None:
        """(B, S) score of every position of the stage's sequence."""

    def select(self, inputs: SelectionInputs) -> torch.Tensor:
        counts = [self.kept(int(n)) for n in inputs.image.sum(dim=1).tolist()]
        return top_by_score(self.scores(inputs), inputs.image, counts, self.name)

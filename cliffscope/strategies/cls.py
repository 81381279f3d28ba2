"""`cls`: keep the image tokens the vision tower itself finds most salient (FasterVLM, VisionZip).

The score of an image token is read from the vision tower's attention at the layer whose output
the family feeds the language model: the [CLS] query's attention to each patch where the tower
has a CLS token (CLIP: LLaVA-1.5), else the mean attention each patch receives over all
queries (towers without CLS, e.g. Qwen2-VL's) — the adapter says which, and maps patches onto
image tokens (`models.saliency`). The ranking does not depend on the decoder, so k = 0 prunes
before the language model, as FasterVLM does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cliffscope.strategies.base import (
    BUDGET,
    SelectionInputs,
    TokenStrategy,
    check_budget,
    kept_count,
)
from cliffscope.strategies.fastv import top_by_score

if TYPE_CHECKING:
    import torch


class ClsAttention(TokenStrategy):
    name = "cls"
    summary = "top budget x n image tokens by the vision tower's [CLS] (or mean received) attention"
    parameters = (BUDGET,)
    needs_vision = True

    def __init__(self, budget: float) -> None:
        self.budget = check_budget(self.name, budget)

    def kept(self, n_image: int) -> int:
        return kept_count(self.budget, n_image)

    def select(self, inputs: SelectionInputs) -> torch.Tensor:
        counts = [self.kept(int(n)) for n in inputs.image.sum(dim=1).tolist()]
        return top_by_score(inputs.vision, inputs.image, counts, "cls")

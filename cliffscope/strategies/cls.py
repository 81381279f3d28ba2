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

from cliffscope.strategies.base import SelectionInputs
from cliffscope.strategies.ranked import RankedStrategy

if TYPE_CHECKING:
    import torch


class ClsAttention(RankedStrategy):
    name = "cls"
    summary = "top budget x n image tokens by the vision tower's [CLS] (or mean received) attention"
    needs_vision = True

    def scores(self, inputs: SelectionInputs) -> torch.Tensor | None:
        return inputs.vision

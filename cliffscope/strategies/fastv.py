"""`fastv`: keep the image tokens the last prompt position attends to most at layer k - 1.

FastV (Chen et al., 2024) ranks image tokens by the attention the last position pays them in
the layer before pruning (mean over heads) and keeps the top round(R * n). The attention row
comes from the model's own query and key at that layer (a kernel tap, so any kernel works).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cliffscope.errors import CliffscopeError
from cliffscope.strategies.base import SelectionInputs, TokenStrategy

if TYPE_CHECKING:
    import torch


def kept_count(ratio: float, n_image: int) -> int:
    """round(ratio * n), halves up: the number of tokens a keep ratio leaves."""
    return int(ratio * n_image + 0.5)


class FastV(TokenStrategy):
    name = "fastv"
    needs_attention = True

    def __init__(self, ratio: float) -> None:
        if not 0.0 <= float(ratio) <= 1.0:
            raise CliffscopeError(f"keep ratio must lie in [0, 1], got {ratio}")
        self.ratio = float(ratio)

    def kept(self, n_image: int) -> int:
        return kept_count(self.ratio, n_image)

    def select(self, inputs: SelectionInputs) -> torch.Tensor:
        import torch

        if inputs.attention is None:
            raise CliffscopeError(f"fastv got no attention row from layer {inputs.layer - 1}")
        selected = torch.zeros_like(inputs.image)
        for row in range(inputs.image.shape[0]):
            positions = inputs.image[row].nonzero().squeeze(1)
            n_keep = self.kept(positions.numel())
            if n_keep:
                top = inputs.attention[row, positions].topk(n_keep).indices
                selected[row, positions[top]] = True
        return selected

    def params(self) -> dict[str, Any]:
        return {"strategy": self.name, "keep_ratio": self.ratio}

    def describe(self) -> str:
        return f"fastv {self.ratio:g}"

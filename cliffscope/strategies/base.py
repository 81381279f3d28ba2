"""The strategy interface: a declaration (name, parameters, cost) plus a selection rule.

Costs are pure arithmetic on the decoder's dimensions (no torch), so aggregation, reports and
the dashboard can state FLOPs and KV-cache saved without loading a model; the selection runs in
the worker, where torch is imported lazily.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from cliffscope.errors import CliffscopeError

if TYPE_CHECKING:
    import torch

    from cliffscope.flops import DecoderDims


@dataclass
class SelectionInputs:
    """What a strategy may look at when it picks image tokens at layer `layer` (torch tensors).

    `image` / `valid` (B, S): image and non-pad positions of the sequence entering `layer`;
    `attention` (B, S): head-mean attention the last position paid each key in layer
    `layer - 1` (only for strategies with `needs_attention`); `keys`: a stable key per row
    (the sample id) for strategies that draw at random.
    """

    layer: int
    image: torch.Tensor
    valid: torch.Tensor
    attention: torch.Tensor | None = None
    keys: list[str] | None = None


class TokenStrategy(ABC):
    """Which image tokens stay from layer k on (the rest leave every later layer)."""

    #: registry name, used on the command line and in run.toml
    name: ClassVar[str] = ""
    #: needs the last prompt position's attention at layer k - 1 (then k >= 1)
    needs_attention: ClassVar[bool] = False

    @property
    def min_layer(self) -> int:
        return 1 if self.needs_attention else 0

    def check_layer(self, k: int) -> None:
        """Refuse a truncation layer the strategy cannot start at."""
        if k < self.min_layer:
            raise CliffscopeError(
                f"the {self.describe()} strategy ranks image tokens by the attention at layer "
                f"k - 1, so k must be >= {self.min_layer}",
                hint="start the layers at 1 (e.g. --layers 1:32)",
            )

    @abstractmethod
    def kept(self, n_image: int) -> int:
        """Image tokens kept (per prompt) from an image run of `n_image` tokens."""

    @abstractmethod
    def select(self, inputs: SelectionInputs) -> torch.Tensor:
        """(B, S) boolean: the image positions that stay (a subset of `inputs.image`)."""

    def params(self) -> dict[str, Any]:
        """The strategy's parameters as they go into run.toml and result.json."""
        return {"strategy": self.name}

    def describe(self) -> str:
        """Short human label (logs, tables)."""
        return self.name

    def savings(self, dims: DecoderDims, n_image: int, n_text: int, k: int) -> tuple[float, float]:
        """(FLOPs saved, KV cache saved) of the decoder prefill, as fractions, for one prompt."""
        from cliffscope.flops import savings

        return savings(dims, n_image, n_text, k, self.kept(n_image))

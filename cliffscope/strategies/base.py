"""The strategy interface: a declaration (name, parameters, cost) plus a selection rule.

Costs are pure arithmetic on the decoder's dimensions (no torch), so aggregation, reports and
the dashboard can state FLOPs and KV-cache saved without loading a model; the selection runs in
the worker, where torch is imported lazily.

A strategy acts at one or more STAGES (layers): at each stage's layer, before that layer runs,
it picks which image tokens of the current sequence stay (`select`), and may merge several
into one (`merges`, the `pool` strategy). Most strategies have one stage, at the truncation
layer k; `pyramid` has a schedule of them. Engines (the truncation hooks, the shared branch
engine) call the strategy once per stage with `SelectionInputs` expressed over the sequence
that enters that layer.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from cliffscope.errors import CliffscopeError

if TYPE_CHECKING:
    import torch

    from cliffscope.flops import DecoderDims
    from cliffscope.models.batch import ImageGrid

#: per row, representative position -> the positions averaged into it (see `TokenStrategy.merges`)
Merges = list[dict[int, list[int]]]


@dataclass(frozen=True)
class Param:
    """One parameter a strategy takes: what a run kind lists, parses and records."""

    name: str
    kind: type
    help: str
    default: Any = None
    required: bool = False


@dataclass
class SelectionInputs:
    """What a strategy may look at when it picks image tokens at stage `stage` (torch tensors).

    All (B, S) tensors are over the sequence entering `layer` (stage 0: the prompt's positions;
    later stages: the rows earlier stages kept):

    - `image` / `valid`: image and non-pad positions still present;
    - `attention`: head-mean attention the last position paid each key in layer `layer - 1`
      (only for strategies with `needs_attention`);
    - `vision`: the vision tower's saliency of each image position (`needs_vision`, see
      `models.saliency`);
    - `grids`: each row's image grids, positions in this sequence (`needs_grids`; stage 0);
    - `keys`: a stable key per row (the sample id) for strategies that draw at random;
    - `image_counts`: image tokens each row's prompt had before any stage.
    """

    layer: int
    image: torch.Tensor
    valid: torch.Tensor
    attention: torch.Tensor | None = None
    keys: list[str] | None = None
    vision: torch.Tensor | None = None
    grids: list[list[ImageGrid]] | None = None
    image_counts: list[int] | None = None
    stage: int = 0


class TokenStrategy(ABC):
    """Which image tokens stay from layer k on (the rest leave every later layer)."""

    #: registry name, used on the command line and in run.toml
    name: ClassVar[str] = ""
    #: what the strategy takes (a run kind lists, parses and records these)
    parameters: ClassVar[tuple[Param, ...]] = ()
    #: one line for help screens
    summary: ClassVar[str] = ""
    #: needs the last prompt position's attention at layer k - 1 (then k >= 1)
    needs_attention: ClassVar[bool] = False
    #: needs the vision tower's saliency of each image token (`SelectionInputs.vision`)
    needs_vision: ClassVar[bool] = False
    #: needs the image grids (`SelectionInputs.grids`)
    needs_grids: ClassVar[bool] = False
    #: merges tokens into new ones (cannot be expressed as a mask: drop mode only)
    merges_tokens: ClassVar[bool] = False

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

    def stage_layers(self, k: int) -> list[int]:
        """The layers the strategy acts at, ascending, when truncation starts at `k`."""
        self.check_layer(k)
        return [k]

    @abstractmethod
    def kept(self, n_image: int) -> int:
        """Image tokens kept (per prompt) after the last stage, from a run of `n_image`."""

    def kept_schedule(self, k: int, n_image: int) -> list[tuple[int, int]]:
        """(layer, image tokens present from that layer on) for each stage."""
        return [(k, self.kept(n_image))]

    @abstractmethod
    def select(self, inputs: SelectionInputs) -> torch.Tensor:
        """(B, S) boolean: the image positions that stay (a subset of `inputs.image`)."""

    def merges(self, inputs: SelectionInputs, selected: torch.Tensor) -> Merges | None:
        """Tokens merged into the `selected` ones: per row, {kept position: [positions averaged
        into it, itself included]}; None (or rows without entries): kept tokens stay as they are."""
        return None

    def values(self) -> dict[str, Any]:
        """The declared parameters' values."""
        return {p.name: getattr(self, p.name) for p in self.parameters}

    def params(self) -> dict[str, Any]:
        """The strategy's parameters as they go into run.toml and result.json."""
        return {"strategy": self.name, **self.values()}

    def describe(self) -> str:
        """Short human label (logs, tables)."""
        shown = " ".join(
            f"{v:g}" if isinstance(v, float) else str(v) for v in self.values().values()
        )
        return f"{self.name} {shown}".strip()

    def savings(self, dims: DecoderDims, n_image: int, n_text: int, k: int) -> tuple[float, float]:
        """(FLOPs saved, KV cache saved) of the decoder prefill, as fractions, for one prompt."""
        from cliffscope.flops import staged_savings

        return staged_savings(dims, n_image, n_text, self.kept_schedule(k, n_image))


def check_budget(name: str, budget: Any) -> float:
    """A keep budget as a float in [0, 1], or a clear error."""
    try:
        value = float(budget)
    except (TypeError, ValueError):
        raise CliffscopeError(f"{name}: budget must be a number, got {budget!r}") from None
    if not 0.0 <= value <= 1.0:
        raise CliffscopeError(
            f"{name}: budget must lie in [0, 1] (the share of image tokens kept), got {budget}"
        )
    return value


def kept_count(ratio: float, n_image: int) -> int:
    """round(ratio * n), halves up: the number of tokens a keep ratio leaves."""
    return int(ratio * n_image + 0.5)


BUDGET = Param("budget", float, "share of image tokens kept, in [0, 1]", required=True)

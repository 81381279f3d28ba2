"""`pyramid`: staged drops by a schedule of (layer, keep ratio) pairs (PyramidDrop).

PyramidDrop (Xing et al., 2024) splits the decoder into stages and, at each stage's first layer,
keeps the image tokens the last prompt position attends to most in the layer before (as FastV),
so the image shrinks in steps: the default schedule `8:0.5,16:0.25,24:0.125` keeps 50 / 25 /
12.5 % from layers 8 / 16 / 24 on. Ratios are shares of the prompt's ORIGINAL image tokens
(round(r * n) each stage), non-increasing. With a `budget`, the schedule's layers are kept and
its ratios replaced by the geometric sequence ending at the budget (budget^(s/m) for stage
s = 1..m: PyramidDrop's lambda^s), so pyramid can be swept over budgets like the others.

The schedule names its own layers: an engine's truncation layer k must be the first of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cliffscope.errors import CliffscopeError
from cliffscope.strategies.base import (
    Param,
    SelectionInputs,
    TokenStrategy,
    check_budget,
    kept_count,
)
from cliffscope.strategies.ranked import top_by_score

if TYPE_CHECKING:
    import torch

DEFAULT_SCHEDULE = "8:0.5,16:0.25,24:0.125"


def parse_schedule(text: str | list[Any]) -> list[tuple[int, float]]:
    """ "8:0.5,16:0.25" (or [[8, 0.5], ...]) -> [(8, 0.5), (16, 0.25)], checked."""
    if isinstance(text, str):
        items = [part.split(":") for part in text.replace(" ", "").split(",") if part]
    else:
        items = [list(item) for item in text]
    try:
        schedule = [(int(layer), float(ratio)) for layer, ratio in items]
    except (TypeError, ValueError):
        raise CliffscopeError(
            f"pyramid: cannot read the schedule {text!r}",
            hint="layer:ratio pairs, e.g. 8:0.5,16:0.25",
        ) from None
    if not schedule:
        raise CliffscopeError("pyramid: the schedule is empty", hint="e.g. 8:0.5,16:0.25,24:0.125")
    layers = [layer for layer, _ in schedule]
    ratios = [check_budget("pyramid", ratio) for _, ratio in schedule]
    if layers[0] < 1 or layers != sorted(set(layers)):
        raise CliffscopeError(
            f"pyramid: schedule layers must be >= 1 and strictly increasing, got {layers}"
        )
    if any(b > a for a, b in zip(ratios, ratios[1:], strict=False)):
        raise CliffscopeError(f"pyramid: keep ratios must not grow from stage to stage: {ratios}")
    return list(zip(layers, ratios, strict=True))


def format_schedule(schedule: list[tuple[int, float]]) -> str:
    return ",".join(f"{layer}:{ratio:g}" for layer, ratio in schedule)


class Pyramid(TokenStrategy):
    name = "pyramid"
    summary = "staged drops (PyramidDrop): at each (layer, ratio) keep the most attended tokens"
    parameters = (
        Param("schedule", str, "layer:ratio pairs, ratios of the original image tokens",
              default=DEFAULT_SCHEDULE),
        Param("budget", float, "final keep ratio; replaces the ratios by budget^(s/m)"),
    )  # fmt: skip
    needs_attention = True

    def __init__(self, schedule: str | list[Any] = DEFAULT_SCHEDULE, budget: float | None = None):
        stages = parse_schedule(schedule)
        self.budget = None if budget is None else check_budget(self.name, budget)
        if self.budget is not None:
            m = len(stages)
            stages = [(layer, self.budget ** ((s + 1) / m)) for s, (layer, _) in enumerate(stages)]
        self.stages = stages
        self.schedule = format_schedule(stages)

    @property
    def start(self) -> int:
        return self.stages[0][0]

    def stage_layers(self, k: int) -> list[int]:
        if k != self.start:
            raise CliffscopeError(
                f"pyramid's schedule {self.schedule} starts at layer {self.start}, not k = {k}",
                hint="the schedule names the layers; start the truncation at its first one",
            )
        return [layer for layer, _ in self.stages]

    def kept(self, n_image: int) -> int:
        return kept_count(self.stages[-1][1], n_image)

    def kept_schedule(self, k: int, n_image: int) -> list[tuple[int, int]]:
        return [(layer, kept_count(ratio, n_image)) for layer, ratio in self.stages]

    def select(self, inputs: SelectionInputs) -> torch.Tensor:
        ratio = dict(self.stages).get(inputs.layer)
        if ratio is None or inputs.image_counts is None:
            raise CliffscopeError(f"pyramid: no stage at layer {inputs.layer} (or no image counts)")
        counts = [kept_count(ratio, n) for n in inputs.image_counts]
        return top_by_score(inputs.attention, inputs.image, counts, "pyramid")

    def describe(self) -> str:
        return f"pyramid {self.schedule}"

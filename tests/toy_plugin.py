"""A run kind and a token strategy that live outside the package: the plugin proof.

`tests/test_plugins.py` registers these at run time and, for the worker it starts, through
the `cliffscope.kinds` / `cliffscope.strategies` entry points of a throw-away distribution,
then finds the toy kind in `cliffscope --help`, the launch form, `runs show`, the Markdown
report and the run view. Nothing under cliffscope/ knows about it.

The toy kind measures no model: per sample it counts the question's words and scores whether
there are at least `words`; its "cliff" is the strategy's first layer. Its dashboard pane
lives in `tests.toy_plugin_tui` (named by string), so importing this module loads no Textual.
"""

from __future__ import annotations

from typing import Any

from cliffscope.kinds.base import CliffMethod, LayerTable, Pane, RunKind
from cliffscope.kinds.params import KindParams, param
from cliffscope.strategies.base import SelectionInputs, TokenStrategy
from cliffscope.worker.job import Job

NAME = "toy"


class HalfStrategy(TokenStrategy):
    """Keeps the first half of the image tokens of every image run."""

    name = "half"

    def kept(self, n_image: int) -> int:
        return n_image // 2

    def select(self, inputs: SelectionInputs) -> Any:
        selected = inputs.image.clone()
        for row in range(selected.shape[0]):
            positions = inputs.image[row].nonzero().squeeze(1)
            selected[row, positions[self.kept(positions.numel()) :]] = False
        return selected


def _strategies() -> list[str]:
    from cliffscope.strategies.registry import list_strategies

    return list_strategies()


class ToyParams(KindParams):
    words: int = param(3, "Questions of at least this many words score 1.", ge=1)
    strategy: str = param(
        "all", "Token strategy whose kept share is recorded.", choices=_strategies
    )
    checkpoint_s: float = param(0.1, "Seconds between result.json rewrites.", hidden=True)


class ToyJob(Job):
    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        from cliffscope.strategies.registry import make_strategy

        self.strategy = make_strategy(self.params.strategy)

    def measure(self, samples: list[Any]) -> list[dict[str, Any]]:
        lines = []
        for sample in samples:
            n = len(str(sample.question).split())
            lines.append(
                {
                    "key": sample.id,
                    "id": sample.id,
                    "question": sample.question,
                    "prediction": str(n),
                    "score": float(n >= self.params.words),
                    "kept_of_16": self.strategy.kept(16),
                }
            )
        return lines

    def aggregate(self, complete: bool) -> dict[str, Any]:
        scores = [float(r["score"]) for r in self.records if "score" in r]
        mean = sum(scores) / len(scores) if scores else None
        return {
            "schema_version": 1,
            "kind": NAME,
            "num_layers": 4,
            "n_samples": len(scores),
            "metric": "long question",
            "complete": complete,
            "score": {"value": mean, "lo": mean, "hi": mean},
            "strategy": self.strategy.describe(),
            "cliff": {
                "layer": self.strategy.min_layer + 1,
                "verdict": "cliff",
                "reason": f"toy: the {self.strategy.describe()} strategy starts at layer 0",
            },
            "kept": [self.strategy.kept(16) for _ in range(4)],
        }


class ToyKind(RunKind):
    name = NAME
    command = "toy"
    title = "question length (a test plugin)"
    help = "Count the words of every question (a run kind from the test suite)."
    Params = ToyParams
    job = "tests.toy_plugin:ToyJob"
    cliff_method = CliffMethod(
        "toy", "toy estimate", "toy cliff", "cyan", "The toy cliff is made up."
    )
    partners = ("analysis",)
    panes = (Pane("toy", "Toy", "tests.toy_plugin_tui:ToyPane"),)

    def layer_table(self, result: dict[str, Any]) -> LayerTable | None:
        kept = result.get("kept") or []
        table = LayerTable("image tokens kept of 16", ["layer", "kept"])
        table.rows = [[str(i), str(k)] for i, k in enumerate(kept)]
        return table if kept else None

    def report_sections(self, run: Any, estimates: list[dict], assets: Any) -> list[str]:
        return [
            f"## Toy section\n\nStrategy {run.res.get('strategy')}, kept {run.res.get('kept')}."
        ]


KIND = ToyKind()

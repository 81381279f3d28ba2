"""The `sweep` kind: the task scored with image tokens removed from layer k on, for every k.

Declared here once: its parameters (`cliffscope sweep` options and the launch form; the token
strategy's choices come from the strategy registry when asked), its job
(`worker.sweep_job`), how its result reads (the score is the untruncated baseline), its report
section (`report.sweep_report`), its run-view pane (Sweep) and Samples view, and its partner:
the analysis of the same model and task, whose flow cliff it records in result.json.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import field_validator, model_validator

from cliffscope.kinds.base import CliffMethod, CurveSpec, Pane, RunKind
from cliffscope.kinds.params import KindParams, param
from cliffscope.sweep_layers import LAYERS_HELP, parse_layers

NAME = "sweep"


def _strategies() -> list[str]:
    from cliffscope.strategies.registry import list_strategies

    return list_strategies()


class SweepParams(KindParams):
    layers: str | list[int] = param(
        "all",
        LAYERS_HELP,
        placeholder="all k = 0..L; or 0:8:2; or 0,2,4",
        summary=False,
    )
    mode: Literal["drop", "mask"] = param(
        "drop",
        "drop: image tokens leave hidden states, KV cache and masks; mask: image keys are "
        "masked, nothing removed (the paper's / FastV's code). On text positions the two are "
        "identical (tested), so --engine shared computes mask mode by dropping (run.toml and "
        "the run log say so); --engine naive computes it through masks.",
        labels={"drop": "drop image tokens", "mask": "mask image tokens"},
    )
    strategy: str | None = param(
        None,
        "Which image tokens leave at layer k (the token-strategy registry): all = every one "
        "(the paper's truncation), fastv = keep the top --keep-ratio by the last prompt "
        "position's attention at layer k-1. Default: all, or fastv with --keep-ratio.",
        choices=_strategies,
        placeholder="default: all (fastv when a keep ratio is given)",
    )
    keep_ratio: float | None = param(
        None,
        "The share R of image tokens a keeping strategy keeps (fastv: the top R by the last "
        "prompt position's attention at layer k-1, so k starts at 1). Alone it means "
        "--strategy fastv.",
        placeholder="share of image tokens kept (fastv), 0..1",
        ge=0.0,
        le=1.0,
    )
    tolerance: float = param(
        0.01,
        "Largest drop from the baseline still counted as recovered (metric units; 0.01 = one "
        "point), besides an interval that reaches the baseline.",
        placeholder="largest drop still counted as recovered",
        ge=0.0,
    )
    engine: Literal["shared", "naive"] = param(
        "shared",
        "shared: one forward per batch, layers k..L-1 recomputed per k; naive: every k on its "
        "own (same answers, slower; for checking).",
        labels={"shared": "shared prefix (fast)", "naive": "every k on its own (check)"},
    )
    verify: int | None = param(
        None,
        "Re-run N samples with the naive engine and record how often the shared engine's "
        "answers agree (with the margin of each disagreement). Default: 8 in bfloat16/float16, "
        "where rounding can flip near-tied tokens, 0 in float32; 0 turns it off.",
        placeholder="samples re-run naive (empty: 8 in half precision)",
        ge=0,
    )
    checkpoint_s: float = param(15.0, "Seconds between result.json rewrites.", hidden=True, gt=0)

    @field_validator("layers", mode="before")
    @classmethod
    def _layers(cls, value: Any) -> Any:
        return parse_layers(value) if value is None or isinstance(value, str) else value

    @model_validator(mode="after")
    def _strategy(self) -> SweepParams:
        from cliffscope.strategies.registry import from_run_params

        if self.strategy is None:
            self.strategy = "all" if self.keep_ratio is None else "fastv"
        strategy = from_run_params({"strategy": self.strategy, "keep_ratio": self.keep_ratio})
        if self.layers != "all":
            for k in self.layers:
                strategy.check_layer(int(k))
        return self

    def token_strategy(self) -> Any:
        from cliffscope.strategies.registry import from_run_params

        return from_run_params({"strategy": self.strategy, "keep_ratio": self.keep_ratio})

    def run_params(self) -> dict[str, Any]:
        out = super().run_params()
        if self.mode == "mask" and self.engine == "shared":
            out["computed_as"] = "drop"
        return out


class SweepKind(RunKind):
    name = NAME
    command = "sweep"
    title = "truncation"
    help = (
        "Score the task with image tokens truncated from layer k on, for every k, and find the "
        "sweep's cliff (shown beside the flow cliff of an analysis of the same profile and "
        "task)."
    )
    Params = SweepParams
    job = "cliffscope.worker.sweep_job:SweepJob"
    cliff_method = CliffMethod(
        "sweep",
        "truncation sweep",
        "sweep cliff",
        "green",
        "The sweep cliff is the smallest k whose score stays within tolerance of the "
        "untruncated baseline.",
        marker="sweep cliff (k)",
    )
    partners = ("analysis",)
    records_partners = ("analysis",)
    panes = (Pane("sweep", "Sweep", "cliffscope.tui.widgets.sweep_pane:SweepPane"),)
    samples_view = "cliffscope.tui.sample_views:SweepSamples"
    report_module = "cliffscope.report.sweep_report"
    curve = CurveSpec(
        title="score − baseline after truncation",
        text_title="score - baseline by k / L",
        figure_title="truncation sweep: image removed from depth k / L on",
        ylabel="score − baseline",
        zero_line=True,
    )
    score_label = "baseline (untruncated) "
    examples_title = "baseline answers"

    def score(self, result: dict[str, Any]) -> dict[str, float | None] | None:
        from cliffscope.report import tables

        base = tables.baseline(result)
        if base is None:
            return None
        return {"value": base["score"], "lo": base["lo"], "hi": base["hi"]}

    def example_lines(self, samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [s for s in samples if s.get("k", "base") == "base" and "prediction" in s]


KIND = SweepKind()

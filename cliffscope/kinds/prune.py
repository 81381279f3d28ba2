"""The `prune` kind: token-pruning methods compared on the same samples, at one layer K.

Declared here once: its parameters (`cliffscope prune` options and the launch form; the
strategy names come from the strategy registry), its job (`worker.prune_job`), how its result
reads (the score is the untruncated baseline; no cliff of its own), its report section, table
and Pareto plot (`report.prune_report`), its run-view pane (Prune) and Samples view. Which
branches run is `strategies.plan.plan_branches`'s: one per (strategy, budget), `all` once,
pairs a strategy refuses (pool at a budget that is not 1/n) left out and listed.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import field_validator, model_validator

from cliffscope.errors import ValidationError
from cliffscope.kinds.base import Pane, RunKind
from cliffscope.kinds.params import KindParams, param

NAME = "prune"


def _names(value: Any) -> list[str]:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return [str(v) for v in value]


class PruneParams(KindParams):
    strategies: str | list[str] = param(
        "fastv,random,cls,pool",
        "Token strategies to compare, comma-separated (the strategy registry: all, fastv, "
        "random, cls, pool, pyramid; docs/strategies.md).",
        placeholder="e.g. fastv,random,cls,pool",
    )
    budgets: str | list[float] = param(
        "0.5,0.25,0.111",
        "Shares of the image tokens kept, comma-separated; every strategy with a budget runs at "
        "each (pool takes 1/n only: a budget it refuses is skipped and listed).",
        placeholder="e.g. 0.5,0.25,0.111",
    )
    layer: int = param(
        2,
        "K: the layer the strategies start at (fastv, random, cls, pool, all); layers before "
        "the first pruning layer run once per batch, shared by every branch.",
        placeholder="pruning layer K",
        ge=0,
    )
    schedule: str | None = param(
        None,
        "pyramid's stages as layer:ratio pairs (e.g. 8:0.5,16:0.25,24:0.125); each budget "
        "replaces the ratios by the geometric sequence ending at it. Needs pyramid among "
        "--strategies. Default: 8:0.5,16:0.25,24:0.125.",
        placeholder="pyramid stages, e.g. 8:0.5,16:0.25,24:0.125",
    )
    random_seed: int = param(
        0,
        "Seed of the random strategy's per-sample draw (recorded; the same sample keeps the "
        "same tokens in any batch and after a resume).",
        placeholder="seed of the random strategy",
        ge=0,
    )
    engine: Literal["shared", "naive"] = param(
        "shared",
        "shared: layers before the first pruning layer once per batch, every branch recomputed "
        "from there in one running batch; naive: every branch on its own (same answers, "
        "slower; for checking).",
        labels={"shared": "shared prefix (fast)", "naive": "every branch on its own (check)"},
    )
    checkpoint_s: float = param(15.0, "Seconds between result.json rewrites.", hidden=True, gt=0)

    @field_validator("strategies", mode="before")
    @classmethod
    def _strategies(cls, value: Any) -> Any:
        from cliffscope.strategies.registry import list_strategies

        names = _names(value)
        known = list_strategies()
        unknown = [n for n in names if n not in known]
        if unknown or not names:
            raise ValidationError(
                f"unknown token strategy {', '.join(unknown)}" if unknown else "no strategy",
                hint="known: " + ", ".join(known),
            )
        return list(dict.fromkeys(names))

    @field_validator("budgets", mode="before")
    @classmethod
    def _budgets(cls, value: Any) -> Any:
        try:
            budgets = [float(b) for b in _names(value)]
        except ValueError:
            raise ValidationError(
                f"cannot read the budgets {value!r}", hint="shares in [0, 1], e.g. 0.5,0.25"
            ) from None
        if any(not 0.0 <= b <= 1.0 for b in budgets):
            raise ValidationError(f"budgets must lie in [0, 1], got {budgets}")
        return list(dict.fromkeys(budgets))

    @model_validator(mode="after")
    def _plan(self) -> PruneParams:
        if self.schedule is not None and "pyramid" not in self.strategies:
            raise ValidationError(
                "a pyramid schedule is given but pyramid is not among the strategies",
                hint="add pyramid to --strategies, or leave --schedule out",
            )
        planned, _ = self.plan()
        if not planned:
            raise ValidationError(
                "no (strategy, budget) pair can run",
                hint="give budgets the strategies take (pool: 1, 0.25, 0.111, 0.0625 ...)",
            )
        return self

    def plan(self) -> tuple[list[Any], list[dict[str, str]]]:
        """(branches that run, refused pairs with the reason): `strategies.plan`."""
        from cliffscope.errors import CliffscopeError
        from cliffscope.strategies.plan import plan_branches

        try:
            return plan_branches(
                list(self.strategies),
                list(self.budgets),  # type: ignore[arg-type]
                self.layer,
                schedule=self.schedule,
                seed=self.random_seed,
                skip_refused=True,
            )
        except CliffscopeError as exc:
            raise ValidationError(exc.what, hint=exc.hint) from None


class PruneKind(RunKind):
    name = NAME
    command = "prune"
    title = "token pruning"
    help = (
        "Compare token-pruning strategies (FastV, random, CLS, pooling, PyramidDrop) on the "
        "same samples at layer K: score, change against the untruncated baseline with a paired "
        "interval, flips, FLOPs and KV saved, prefill latency, and the score-FLOPs Pareto front."
    )
    Params = PruneParams
    job = "cliffscope.worker.prune_job:PruneJob"
    panes = (Pane("prune", "Prune", "cliffscope.tui.widgets.prune_pane:PrunePane"),)
    samples_view = "cliffscope.tui.sample_views:PruneSamples"
    report_module = "cliffscope.report.prune_report"
    score_label = "baseline (untruncated) "
    examples_title = "baseline answers"

    def score(self, result: dict[str, Any]) -> dict[str, float | None] | None:
        base = result.get("baseline")
        if not isinstance(base, dict) or base.get("score") is None:
            return None
        return {"value": base["score"], "lo": base.get("lo"), "hi": base.get("hi")}

    def headline(self, result: dict[str, Any]) -> str:
        parts = [super().headline(result)]
        front = result.get("pareto") or []
        if front:
            parts.append("front " + ", ".join(str(name) for name in front[:3]))
        return ", ".join(p for p in parts if p)

    def example_lines(self, samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [s for s in samples if s.get("branch") == "base" and "prediction" in s]


KIND = PruneKind()

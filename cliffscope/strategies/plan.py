"""Which (strategy, budget) branches a prune comparison runs, without a model or torch.

The prune kind validates its parameters with this (CLI, launch form, worker) and the prune
engine builds its branches from it, so a branch is named and started the same way everywhere:
one branch per (strategy, budget), named `"<strategy>@<budget>"`; a strategy without a budget
(`all`) once, under its name; `pyramid` at its schedule's first layer with each budget as its
final ratio (`pyramid@<budget>`, the schedule's layers and geometric ratios).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cliffscope.errors import CliffscopeError

if TYPE_CHECKING:
    from cliffscope.strategies.base import TokenStrategy


@dataclass(frozen=True)
class Planned:
    """One branch: its report name, first layer and strategy."""

    name: str
    k: int
    strategy: TokenStrategy


def branch_name(strategy: TokenStrategy) -> str:
    """`fastv@0.5`, `pyramid@0.125`, `all`: the label a branch is reported under."""
    budget = getattr(strategy, "budget", None)
    if budget is None:
        return (
            strategy.describe().replace(" ", "@", 1)
            if strategy.name == "pyramid"
            else strategy.name
        )
    return f"{strategy.name}@{budget:g}"


def start_layer(strategy: TokenStrategy, layer: int) -> int:
    """The branch's first layer: K, or a schedule's own first layer (pyramid)."""
    return int(getattr(strategy, "start", layer))


def plan_branches(
    strategies: list[str],
    budgets: list[float],
    layer: int,
    schedule: str | None = None,
    seed: int = 0,
    skip_refused: bool = False,
) -> tuple[list[Planned], list[dict[str, str]]]:
    """(branches, refused): one branch per (strategy, budget). A pair the strategy refuses
    (pool at a budget that is not 1/n, fastv at layer 0 ...) raises, or with `skip_refused`
    is left out and listed as {"branch", "reason"}."""
    from cliffscope.strategies.registry import make_strategy, strategy_class

    planned: list[Planned] = []
    refused: list[dict[str, str]] = []
    for name in strategies:
        declared = {p.name for p in strategy_class(name).parameters}
        extra: dict[str, Any] = {}
        if "seed" in declared:
            extra["seed"] = seed
        if "schedule" in declared and schedule is not None:
            extra["schedule"] = schedule
        wanted: list[float | None] = list(budgets) if "budget" in declared else [None]
        for budget in wanted:
            label = name if budget is None else f"{name}@{budget:g}"
            try:
                kwargs = extra if budget is None else {**extra, "budget": budget}
                strategy = make_strategy(name, **kwargs)
                k = start_layer(strategy, layer)
                strategy.stage_layers(k)
            except CliffscopeError as exc:
                if not skip_refused:
                    raise
                refused.append({"branch": label, "reason": exc.what})
                continue
            planned.append(Planned(branch_name(strategy), k, strategy))
    names = [p.name for p in planned]
    if len(set(names)) != len(names):
        raise CliffscopeError(f"prune branches repeat: {names}", hint="list each budget once")
    return planned, refused

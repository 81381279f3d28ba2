"""Strategies by name, imported only when asked for; plugins add theirs at run time."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from cliffscope.errors import CliffscopeError

if TYPE_CHECKING:
    from cliffscope.strategies.base import TokenStrategy

#: name -> "module:Class" (or the class itself, for strategies registered at run time)
STRATEGIES: dict[str, Any] = {
    "all": "cliffscope.strategies.drop_all:DropAll",
    "fastv": "cliffscope.strategies.fastv:FastV",
    "random": "cliffscope.strategies.random_keep:RandomKeep",
    "cls": "cliffscope.strategies.cls:ClsAttention",
    "pool": "cliffscope.strategies.pool:SpatialPool",
    "pyramid": "cliffscope.strategies.pyramid:Pyramid",
}

#: run.toml names recorded before strategies declared their parameters
LEGACY_NAMES = {"keep_ratio": "budget"}


def register_strategy(name: str, target: Any) -> None:
    """Make `target` ("module:Class" or a class) available as strategy `name`."""
    STRATEGIES[name] = target


def list_strategies() -> list[str]:
    return list(STRATEGIES)


def strategy_class(name: str) -> type[TokenStrategy]:
    try:
        target = STRATEGIES[name]
    except KeyError:
        raise CliffscopeError(
            f"unknown token strategy {name!r}", hint="known: " + ", ".join(STRATEGIES)
        ) from None
    if isinstance(target, str):
        module, _, attr = target.partition(":")
        target = getattr(import_module(module), attr)
    return target


def make_strategy(name: str, **params: Any) -> TokenStrategy:
    """A strategy instance from its name and declared parameters (unknown ones are refused,
    missing required ones named)."""
    cls = strategy_class(name)
    declared = {p.name: p for p in cls.parameters}
    unknown = sorted(set(params) - set(declared))
    if unknown:
        raise CliffscopeError(
            f"strategy {name!r} takes no parameter {', '.join(unknown)}",
            hint="it takes: " + (", ".join(declared) or "nothing"),
        )
    missing = [p.name for p in cls.parameters if p.required and params.get(p.name) is None]
    if missing:
        raise CliffscopeError(f"strategy {name!r} needs {', '.join(missing)}")
    kwargs = {k: v for k, v in params.items() if v is not None}
    return cls(**kwargs)


def from_run_params(params: dict[str, Any]) -> TokenStrategy:
    """The strategy a run's params describe: `strategy` plus its declared parameters (a sweep
    with only `keep_ratio` set is FastV; neither: drop-all)."""
    values = {LEGACY_NAMES.get(k, k): v for k, v in params.items()}
    name = values.get("strategy")
    if name is None:
        name = "all" if values.get("budget") is None else "fastv"
    declared = {p.name for p in strategy_class(name).parameters}
    return make_strategy(name, **{k: v for k, v in values.items() if k in declared})

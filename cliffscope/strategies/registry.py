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
}


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
    """A strategy instance from its name and parameters."""
    return strategy_class(name)(**params)


def from_run_params(params: dict[str, Any]) -> TokenStrategy:
    """The strategy of a sweep's run.toml params (`keep_ratio` set: FastV; else drop-all)."""
    name = params.get("strategy")
    ratio = params.get("keep_ratio")
    if name is None:
        name = "all" if ratio is None else "fastv"
    if name == "fastv":
        return make_strategy("fastv", ratio=float(ratio))
    return make_strategy(name)

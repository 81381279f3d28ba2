"""Strategies by name, imported only when asked for; plugins add theirs at run time.

Three sources, in this order: the built-ins below, `register_strategy` (tests, notebooks), and
the `cliffscope.strategies` entry-point group of installed distributions (read once per
process). A strategy that keeps a share of the image tokens takes it as its `ratio`
constructor argument; run.toml stores it as the sweep's `keep_ratio`.
"""

from __future__ import annotations

import inspect
from functools import cache
from importlib import import_module
from typing import TYPE_CHECKING, Any

from cliffscope.errors import CliffscopeError, ValidationError

if TYPE_CHECKING:
    from cliffscope.strategies.base import TokenStrategy

ENTRY_POINTS = "cliffscope.strategies"
#: the strategy a keep ratio alone stands for (runs and command lines before `strategy`)
RATIO_DEFAULT = "fastv"

#: name -> "module:Class" (or the class itself, for strategies registered at run time)
STRATEGIES: dict[str, Any] = {
    "all": "cliffscope.strategies.drop_all:DropAll",
    "fastv": "cliffscope.strategies.fastv:FastV",
}


@cache
def _plugins() -> dict[str, Any]:
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINTS)}


def refresh_plugins() -> None:
    """Forget the entry points read so far (after installing a plugin in this process)."""
    _plugins.cache_clear()


def register_strategy(name: str, target: Any) -> None:
    """Make `target` ("module:Class" or a class) available as strategy `name`."""
    STRATEGIES[name] = target


def unregister_strategy(name: str) -> None:
    STRATEGIES.pop(name, None)


def list_strategies() -> list[str]:
    return list(dict.fromkeys([*STRATEGIES, *_plugins()]))


def strategy_class(name: str) -> type[TokenStrategy]:
    if name in STRATEGIES:
        target = STRATEGIES[name]
    elif name in _plugins():
        target = _plugins()[name].load()
    else:
        raise CliffscopeError(
            f"unknown token strategy {name!r}", hint="known: " + ", ".join(list_strategies())
        )
    if isinstance(target, str):
        module, _, attr = target.partition(":")
        target = getattr(import_module(module), attr)
    return target


def make_strategy(name: str, **params: Any) -> TokenStrategy:
    """A strategy instance from its name and parameters."""
    return strategy_class(name)(**params)


def from_run_params(params: dict[str, Any]) -> TokenStrategy:
    """The strategy of a sweep's run.toml params: `strategy` and its `keep_ratio` (a keep
    ratio without a strategy, as older runs have it, means FastV; neither means drop-all)."""
    ratio = params.get("keep_ratio")
    name = params.get("strategy") or ("all" if ratio is None else RATIO_DEFAULT)
    cls = strategy_class(str(name))
    accepts = inspect.signature(cls).parameters
    if "ratio" in accepts:
        if ratio is None and accepts["ratio"].default is inspect.Parameter.empty:
            raise ValidationError(
                f"the {name} strategy keeps a share of the image tokens: give the keep ratio",
                hint="--keep-ratio R, with R between 0 and 1",
            )
        return cls(**({} if ratio is None else {"ratio": float(ratio)}))
    if ratio is not None:
        raise ValidationError(
            f"the {name} strategy takes no keep ratio",
            hint="leave the keep ratio out, or choose a strategy that keeps tokens "
            f"(e.g. {RATIO_DEFAULT})",
        )
    return cls()

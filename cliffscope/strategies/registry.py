"""Strategies by name, imported only when asked for; plugins add theirs at run time.

Three sources, in this order: the built-ins below, `register_strategy` (tests, notebooks), and
the `cliffscope.strategies` entry-point group of installed distributions (read once per
process). A strategy declares its parameters (`TokenStrategy.parameters`); one that keeps a
share of the image tokens calls it `budget` (a plugin without declared parameters may take a
`ratio` constructor argument instead); a sweep's run.toml stores it as `keep_ratio`.
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
    "random": "cliffscope.strategies.random_keep:RandomKeep",
    "cls": "cliffscope.strategies.cls:ClsAttention",
    "pool": "cliffscope.strategies.pool:SpatialPool",
    "pyramid": "cliffscope.strategies.pyramid:Pyramid",
}

#: run.toml names recorded before strategies declared their parameters
LEGACY_NAMES = {"keep_ratio": "budget"}


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
    """The strategy a run's params describe: `strategy` plus its declared parameters.

    A sweep records the share kept as `keep_ratio`: the `budget` of a built-in, the `ratio`
    constructor argument of a plugin that declares no parameters. A keep ratio without a
    strategy (older runs and command lines) means FastV; neither means drop-all."""
    values = {LEGACY_NAMES.get(k, k): v for k, v in params.items() if v is not None}
    ratio = values.pop("budget", None)
    name = str(values.get("strategy") or ("all" if ratio is None else RATIO_DEFAULT))
    cls = strategy_class(name)
    declared = {p.name: p for p in cls.parameters}
    share = _share_parameter(cls, declared)
    if share is None and ratio is not None:
        raise ValidationError(
            f"the {name} strategy takes no keep ratio",
            hint="leave the keep ratio out, or choose a strategy that keeps tokens "
            f"(e.g. {RATIO_DEFAULT})",
        )
    if share is not None and ratio is None and share[1]:
        raise ValidationError(
            f"the {name} strategy keeps a share of the image tokens: give the keep ratio",
            hint="--keep-ratio R, with R between 0 and 1",
        )
    kwargs = {k: v for k, v in values.items() if k in declared}
    if ratio is not None and share is not None:
        kwargs[share[0]] = float(ratio)
    if declared or not kwargs:
        return make_strategy(name, **kwargs)
    return cls(**kwargs)


def _share_parameter(cls: type[TokenStrategy], declared: dict[str, Any]) -> tuple[str, bool] | None:
    """(name, required) of the parameter a keep ratio goes to, or None if it takes none."""
    if "budget" in declared:
        return "budget", declared["budget"].required
    if declared:
        return None
    accepts = inspect.signature(cls).parameters
    if "ratio" in accepts:
        return "ratio", accepts["ratio"].default is inspect.Parameter.empty
    return None

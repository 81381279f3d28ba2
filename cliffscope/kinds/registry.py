"""Run kinds by name: the built-in ones, those registered at run time, and plugins.

A kind is found three ways, in this order: the built-in declarations below (imported on first
use), `register_kind` (tests, notebooks), and the `cliffscope.kinds` entry-point group of any
installed distribution (`[project.entry-points."cliffscope.kinds"] prune = "pkg.mod:KIND"`),
read once per process. Every list of kinds (CLI commands, `runs list --kind`, the launch form,
report columns) comes from `kinds()`, in this order.
"""

from __future__ import annotations

from functools import cache
from importlib import import_module
from typing import Any

from cliffscope.errors import ValidationError
from cliffscope.kinds.base import CliffMethod, RunKind

ENTRY_POINTS = "cliffscope.kinds"

_BUILTIN: dict[str, Any] = {
    "analysis": "cliffscope.kinds.analysis:KIND",
    "sweep": "cliffscope.kinds.sweep:KIND",
}
_REGISTERED: dict[str, Any] = {}


def load_target(target: Any) -> Any:
    """A "module:attr" string imported, anything else returned as it is."""
    if isinstance(target, str):
        module, _, attr = target.partition(":")
        return getattr(import_module(module), attr)
    return target


@cache
def _plugins() -> dict[str, Any]:
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINTS)}


def refresh_plugins() -> None:
    """Forget the entry points read so far (after installing a plugin in this process)."""
    _plugins.cache_clear()
    _load.cache_clear()


def register_kind(kind: RunKind | type[RunKind] | str, name: str | None = None) -> None:
    """Make `kind` (an instance, its class, or "module:attr") available under its name."""
    if isinstance(kind, str):
        if name is None:
            raise ValueError("a kind given as 'module:attr' needs its name")
        _REGISTERED[name] = kind
    else:
        _REGISTERED[name or kind.name] = kind
    _load.cache_clear()


def unregister_kind(name: str) -> None:
    _REGISTERED.pop(name, None)
    _load.cache_clear()


def kind_names() -> list[str]:
    """Every known kind name, built-ins first (no kind module is imported)."""
    return list(dict.fromkeys([*_BUILTIN, *_REGISTERED, *_plugins()]))


@cache
def _load(name: str) -> RunKind:
    if name in _REGISTERED:
        target = _REGISTERED[name]
    elif name in _BUILTIN:
        target = _BUILTIN[name]
    elif name in _plugins():
        target = _plugins()[name].load()
    else:
        raise KeyError(name)
    kind = load_target(target)
    kind = kind() if isinstance(kind, type) else kind
    if not isinstance(kind, RunKind) or kind.name != name:
        raise ValidationError(
            f"run kind {name!r} does not declare a RunKind named {name!r}", hint=f"{target!r}"
        )
    return kind


def get_kind(name: str) -> RunKind:
    try:
        return _load(str(name))
    except KeyError:
        raise ValidationError(
            f"unknown run kind {name!r}", hint=f"one of {', '.join(kind_names())}"
        ) from None


def kinds() -> list[RunKind]:
    return [get_kind(name) for name in kind_names()]


def partners_of(name: str) -> list[str]:
    """Kinds whose cliff estimates stand beside `name`'s: those it names, and those that name
    it (so a new kind joins the existing ones without editing them)."""
    own = get_kind(name)
    return [
        k.name for k in kinds() if k.name != name and (k.name in own.partners or name in k.partners)
    ]


def family(name: str) -> list[RunKind]:
    """`name` and its partners, in registry order: the run view's tabs, the report's
    estimates."""
    members = {name, *partners_of(name)}
    return [k for k in kinds() if k.name in members]


def cliff_methods(names: list[str] | None = None) -> list[tuple[RunKind, CliffMethod]]:
    """(kind, method) of every kind (or of `names`) that estimates a cliff."""
    chosen = kinds() if names is None else [get_kind(n) for n in names]
    return [(k, k.cliff_method) for k in chosen if k.cliff_method is not None]


def kind_of(run_kind: Any) -> RunKind | None:
    """The kind of a run as its run.toml names it, or None when unknown (foreign runs)."""
    try:
        return get_kind(str(run_kind))
    except ValidationError:
        return None


def headline(result: dict[str, Any], kind: Any = None) -> str:
    """The score and cliff of a result in a few words, as its kind says them."""
    found = kind_of(result.get("kind") or kind)
    return (found or RunKind()).headline(result) if result else ""

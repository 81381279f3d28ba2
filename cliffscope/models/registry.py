"""Adapter families by name, imported only when asked for (no torch at registry import)."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from cliffscope.errors import CliffscopeError

if TYPE_CHECKING:
    from cliffscope.models.base import ModelAdapter

#: family name -> "module:Class"
ADAPTERS: dict[str, str] = {
    "llava": "cliffscope.models.llava:LlavaAdapter",
    "llava-next": "cliffscope.models.llava_next:LlavaNextAdapter",
    "qwen2-vl": "cliffscope.models.qwen2_vl:Qwen2VLAdapter",
    "qwen2.5-vl": "cliffscope.models.qwen2_vl:Qwen2_5_VLAdapter",
    "generic": "cliffscope.models.generic:GenericAdapter",
}

#: `config.model_type` -> family, for profiles with family = "auto"
MODEL_TYPES: dict[str, str] = {
    "llava": "llava",
    "llava_next": "llava-next",
    "qwen2_vl": "qwen2-vl",
    "qwen2_5_vl": "qwen2.5-vl",
}


def list_families() -> list[str]:
    return list(ADAPTERS)


def get_adapter_class(family: str) -> type[ModelAdapter]:
    """The adapter class for a family name (see `ADAPTERS`)."""
    try:
        target = ADAPTERS[family]
    except KeyError:
        raise CliffscopeError(
            f"unknown model family {family!r}", hint="known: " + ", ".join(ADAPTERS)
        ) from None
    module, _, name = target.partition(":")
    return getattr(import_module(module), name)

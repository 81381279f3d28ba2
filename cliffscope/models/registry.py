"""Model families, declared once: by the adapter classes themselves.

Each adapter class states its `family`, the `model_types` it serves and a one-line
`description`; everything else — the family a checkpoint's `model_type` maps to, the values a
profile's `family` may take, `profiles check` hints, `models support` and docs/models.md —
is derived here from those declarations. Adapter modules import no torch at module level, so
listing families is cheap. Adding a family is one module plus one line in `FAMILY_MODULES`
(or `register_family` at run time, for plugins).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import import_module
from typing import TYPE_CHECKING

from cliffscope.errors import CliffscopeError

if TYPE_CHECKING:
    from cliffscope.models.base import ModelAdapter

#: every adapter class, as "module:Class", in the order families are listed
FAMILY_MODULES: list[str] = [
    "cliffscope.models.llava:LlavaAdapter",
    "cliffscope.models.llava_next:LlavaNextAdapter",
    "cliffscope.models.llava_onevision:LlavaOnevisionAdapter",
    "cliffscope.models.qwen2_vl:Qwen2VLAdapter",
    "cliffscope.models.qwen2_vl:Qwen2_5_VLAdapter",
    "cliffscope.models.qwen3_vl:Qwen3VLAdapter",
    "cliffscope.models.internvl:InternVLAdapter",
    "cliffscope.models.gemma3:Gemma3Adapter",
    "cliffscope.models.idefics3:Idefics3Adapter",
    "cliffscope.models.idefics3:SmolVLMAdapter",
    "cliffscope.models.mistral3:Mistral3Adapter",
    "cliffscope.models.generic:GenericAdapter",
]

#: the profile value that reads the family off the checkpoint's config
AUTO = "auto"
GENERIC = "generic"


def register_family(target: str) -> None:
    """Add an adapter class ("module:Class") to the families (plugins, tests)."""
    if target not in FAMILY_MODULES:
        FAMILY_MODULES.insert(len(FAMILY_MODULES) - 1, target)  # before the generic fallback
        _classes.cache_clear()


@lru_cache(maxsize=1)
def _classes() -> dict[str, type[ModelAdapter]]:
    out: dict[str, type[ModelAdapter]] = {}
    for target in FAMILY_MODULES:
        module, _, name = target.partition(":")
        cls = getattr(import_module(module), name)
        out[cls.family] = cls
    return out


def list_families() -> list[str]:
    """Family names a profile may name (besides "auto")."""
    return list(_classes())


def family_descriptions() -> dict[str, str]:
    return {name: cls.description for name, cls in _classes().items()}


def model_types() -> dict[str, str]:
    """`config.model_type` -> family, for profiles with family = "auto"."""
    return {t: name for name, cls in _classes().items() for t in cls.model_types}


def get_adapter_class(family: str) -> type[ModelAdapter]:
    """The adapter class for a family name."""
    try:
        return _classes()[family]
    except KeyError:
        raise CliffscopeError(
            f"unknown model family {family!r}", hint="known: " + ", ".join(_classes())
        ) from None

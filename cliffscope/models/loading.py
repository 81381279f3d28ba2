"""Profile -> loaded model + processor + the right adapter.

Everything a profile can say about loading is applied here and nowhere else: where the weights
come from (hub id, local directory, the built-in demo), revision, dtype, accelerate device map
and memory caps, attention kernel, safetensors-only, and `trust_remote_code` (passed only when
the profile turns it on). Failures a user can fix become `CliffscopeError`s with a hint.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cliffscope.errors import CliffscopeError, Location
from cliffscope.models.registry import GENERIC, get_adapter_class, list_families, model_types

if TYPE_CHECKING:
    from cliffscope.models.base import ModelAdapter
    from cliffscope.profiles import Profile

OFFLINE_HINT = (
    "no model hub may be reachable from here: point `model` at a local directory, or set "
    "HF_HUB_OFFLINE=1 to load a checkpoint already in the Hugging Face cache"
)


def resolve_model_source(profile: Profile) -> str:
    """Local directory (as a string) or hub id that `from_pretrained` should read."""
    model = profile.model
    where = Location(key="model")
    if model.startswith("builtin:"):
        name = model.split(":", 1)[1]
        from cliffscope import demo

        builtins = demo.builtin_models()
        if name not in builtins:
            known = ", ".join(f"builtin:{n}" for n in builtins)
            raise CliffscopeError(
                f"unknown built-in model {model!r}", where=where, hint=f"use one of {known}"
            )
        path = Path(builtins[name])
        if not (path / "config.json").exists():
            flag = " --deep" if name == "demo-deep" else ""
            raise CliffscopeError(
                f"the {name} model is not built yet ({path})",
                where=where,
                hint=f"run `cliffscope demo build{flag} --install`",
            )
        return str(path)
    expanded = Path(os.path.expanduser(model))
    # A hub id is "name" or "org/name"; anything else that does not exist is a missing path.
    looks_local = model.startswith((".", "/", "~")) or model.count("/") > 1
    if expanded.exists():
        if not (expanded / "config.json").exists():
            raise CliffscopeError(
                f"{expanded} has no config.json",
                where=where,
                hint="point `model` at a checkpoint directory",
            )
        return str(expanded)
    if looks_local:
        raise CliffscopeError(
            f"model directory {expanded} does not exist", where=where, hint=OFFLINE_HINT
        )
    return model


def torch_dtype(name: str) -> Any:
    """Profile dtype -> torch dtype; "auto" is bfloat16 on GPU, float32 on CPU."""
    import torch

    if name == "auto":
        return torch.bfloat16 if torch.cuda.is_available() else torch.float32
    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[name]


def attn_implementation(profile: Profile, config: Any) -> dict[str, str]:
    """Dict form: the decoder gets `attn_implementation`, every other sub-model (the vision
    tower, a projector with attention) gets `Profile.vision_attention`.

    The decoder runs cliffscope's wrapper around its kernel (`models.kernel`); the tower never
    does.
    """
    text, vision = profile.attn_implementation, profile.vision_attention
    out = {"": text}
    for key in getattr(config, "sub_configs", {}):
        sub = getattr(config, key, None)
        if sub is None:
            continue
        out[key] = text if sub is config.get_text_config() else vision
    return out


def detect_family(config: Any) -> str:
    """Family for a config: known model_type, else "generic" if it has an image token."""
    family = model_types().get(getattr(config, "model_type", ""))
    if family:
        return family
    if (
        getattr(config, "image_token_id", None) is not None
        or getattr(config, "image_token_index", None) is not None
    ):
        return GENERIC
    known = ", ".join(f for f in list_families() if f != GENERIC)
    raise CliffscopeError(
        f"no adapter for model type {getattr(config, 'model_type', '?')!r}",
        where=Location(key="family"),
        hint=f"supported: {known}, or any image-text-to-text model whose config has "
        'image_token_id (family = "generic")',
    )


def _common_kwargs(profile: Profile) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if profile.revision:
        kwargs["revision"] = profile.revision
    if profile.trust_remote_code:
        kwargs["trust_remote_code"] = True
    return kwargs


def _hub_error(exc: Exception, source: str, what: str) -> CliffscopeError:
    return CliffscopeError(
        f"cannot load the {what} of {source!r}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
        where=Location(key="model"),
        hint=OFFLINE_HINT,
    )


def load_config(profile: Profile, source: str | None = None) -> Any:
    from transformers import AutoConfig

    source = source or resolve_model_source(profile)
    try:
        return AutoConfig.from_pretrained(source, **_common_kwargs(profile))
    except (OSError, ValueError) as exc:
        raise _hub_error(exc, source, "config") from exc


def load_adapter(profile: Profile) -> ModelAdapter:
    """Load the profile's model and processor and wrap them in the family's adapter."""
    import torch
    from transformers import AutoProcessor

    source = resolve_model_source(profile)
    config = load_config(profile, source)
    detected = detect_family(config)
    family = detected if profile.family == "auto" else profile.family
    cls = get_adapter_class(family)
    if cls.model_types and config.model_type not in cls.model_types:
        raise CliffscopeError(
            f"profile says family {profile.family!r} but the checkpoint is {config.model_type!r}",
            where=Location(key="family"),
            hint=f'set family = "{detected if detected != GENERIC else "auto"}"',
        )
    kwargs = _common_kwargs(profile)
    model_kwargs: dict[str, Any] = {
        **kwargs,
        "dtype": torch_dtype(profile.dtype),
        "attn_implementation": attn_implementation(profile, config),
        "use_safetensors": True if profile.use_safetensors else None,
    }
    model_kwargs.update(placement(profile, torch.cuda.is_available()))
    try:
        model = cls.model_class().from_pretrained(source, **model_kwargs)
    except (OSError, ValueError) as exc:
        raise _hub_error(exc, source, "weights") from exc
    try:
        processor = AutoProcessor.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as exc:
        raise _hub_error(exc, source, "processor") from exc
    tokenizer = processor.tokenizer
    if tokenizer.pad_token is None:  # left padding needs a pad token; EOS is the usual stand-in
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    tokenizer.padding_side = "left"
    return cls(model, processor, profile)


def placement(profile: Profile, cuda: bool) -> dict[str, Any]:
    """`device_map`/`max_memory` for from_pretrained.

    In a data-parallel launch (WORLD_SIZE > 1) each rank gets its own GPU (LOCAL_RANK) unless
    the profile gives an explicit per-module map; "auto" would make every rank spread over every
    GPU. On one process, the profile's map is used as is (with its memory caps).
    """
    import os

    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if world > 1 and cuda and not isinstance(profile.device_map, dict):
        return {"device_map": {"": local_rank}}
    if profile.device_map is not None:
        out: dict[str, Any] = {"device_map": profile.device_map}
        if profile.max_memory:
            out["max_memory"] = _max_memory(profile.max_memory)
        if profile.offload_folder:
            out["offload_folder"] = profile.offload_folder
        return out
    if cuda:
        return {"device_map": {"": local_rank}}
    return {}


def _max_memory(caps: dict[str, str]) -> dict[int | str, str]:
    """TOML keys are strings; accelerate wants GPU indices as ints."""
    return {int(k) if k.isdigit() else k: v for k, v in caps.items()}

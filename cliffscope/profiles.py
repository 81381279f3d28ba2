"""Model profiles: one TOML file per model a researcher keeps on the server.

A profile says which checkpoint to load and how (dtype, devices, attention kernel). It is
validated strictly — an unknown key is almost always a typo that would otherwise silently fall
back to a default — and every error names the file, the line and the key. Saving goes through
tomlkit so the user's comments and layout survive an edit made from the dashboard.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cliffscope import paths
from cliffscope.errors import Location, NotFoundError, ValidationError
from cliffscope.naming import check_name
from cliffscope.tomlfile import parse_toml, pydantic_errors

DType = Literal["auto", "float32", "float16", "bfloat16"]
AttnImpl = Literal["sdpa", "eager", "flash_attention_2"]

BUILTIN_PREFIX = "builtin:"
VISION_ATTN_RULE = "sdpa, or flash_attention_2 when the decoder uses it"


class Profile(BaseModel):
    """How to load one model. Field docs double as the `profiles show` help text."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    name: str = Field(description="profile name, used on the command line")
    family: str = Field(
        "auto", description="adapter family (`cliffscope models support`); auto reads the config"
    )
    model: str = Field(description="hub id, local path, or builtin:demo")
    revision: str | None = Field(None, description="hub revision (commit, tag or branch)")
    dtype: DType = Field(
        "auto", description="weights dtype; auto = bfloat16 on GPU, float32 on CPU"
    )
    device_map: str | dict[str, int | str] | None = Field(
        None, description='accelerate device map, e.g. "auto"; none = single device'
    )
    max_memory: dict[str, str] | None = Field(
        None, description='per-device caps for device_map="auto", e.g. {0 = "20GiB", cpu = "64GiB"}'
    )
    offload_folder: str | None = Field(
        None, description='where accelerate keeps weights of modules mapped to "disk"'
    )
    attn_implementation: AttnImpl = Field(
        "sdpa", description="attention kernel of the decoder (the layers cliffscope measures)"
    )
    vision_attn_implementation: AttnImpl | None = Field(
        None, description=f"attention kernel of the vision tower; unset: {VISION_ATTN_RULE}"
    )
    trust_remote_code: bool = Field(False, description="run the checkpoint's own Python code")
    use_safetensors: bool = Field(True, description="refuse pickled .bin weights")
    batch_size: int = Field(8, ge=1, le=4096, description="samples per forward pass")
    max_new_tokens: int = Field(16, ge=1, le=4096, description="generation length cap")
    system_prompt: str | None = Field(None, description="replaces the chat template's default")
    notes: str = Field("", description="free text shown in the dashboard")

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        try:
            check_name(value, "profile name")
        except ValidationError as exc:
            raise ValueError(exc.hint or exc.what) from None
        return value

    @field_validator("family")
    @classmethod
    def _known_family(cls, value: str) -> str:
        from cliffscope.models.registry import AUTO, list_families

        known = [*list_families(), AUTO]
        if value not in known:
            raise ValueError(f"unknown family {value!r}; one of: {', '.join(known)}")
        return value

    @field_validator("model")
    @classmethod
    def _nonempty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    @property
    def vision_attention(self) -> AttnImpl:
        """The vision tower's kernel: the profile's choice, else sdpa (flash with a flash decoder).

        The tower is kept off `eager` unless asked for, so an eager decoder (or a capture
        kernel switched in for the decoder) never slows the encoder down.
        """
        if self.vision_attn_implementation is not None:
            return self.vision_attn_implementation
        return "flash_attention_2" if self.attn_implementation == "flash_attention_2" else "sdpa"

    def shown(self, key: str) -> str:
        """A field's value for `profiles show` and the dashboard: unset kernels say what runs."""
        value = getattr(self, key)
        if key == "vision_attn_implementation" and value is None:
            return f"unset: {self.vision_attention!r}"
        return repr(value)

    @property
    def is_builtin_model(self) -> bool:
        return self.model.startswith(BUILTIN_PREFIX)

    def snapshot(self) -> dict[str, Any]:
        """Every field, for run.toml (None values dropped: TOML has no null)."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class LoadedProfile(BaseModel):
    """A validated profile together with where it came from."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    profile: Profile
    path: Path


def load_profile(path: str | os.PathLike) -> LoadedProfile:
    """Read and validate one profile file; `name` defaults to the file stem."""
    path = Path(path)
    if not path.is_file():
        raise NotFoundError("profile file not found", where=Location(str(path)))
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError(
            "profile is not UTF-8 text", where=Location(str(path)), details=[str(exc)]
        ) from None
    data = parse_toml(path, text)
    data.setdefault("name", path.stem)
    from pydantic import ValidationError as PydanticError

    try:
        profile = Profile.model_validate(data)
    except PydanticError as exc:
        raise pydantic_errors(exc, path, text, list(Profile.model_fields)) from None
    return LoadedProfile(profile=profile, path=path)


def profile_files(profiles_dir: str | os.PathLike | None = None) -> list[Path]:
    """All profile files, earlier directories shadowing later ones by file name."""
    seen: dict[str, Path] = {}
    for directory in paths.profile_dirs(profiles_dir):
        if directory.is_dir():
            for file in sorted(directory.glob("*.toml")):
                seen.setdefault(file.stem, file)
    return sorted(seen.values(), key=lambda p: p.stem)


def find_profile(name_or_path: str, profiles_dir: str | os.PathLike | None = None) -> LoadedProfile:
    """Resolve a profile by name (searched in the profile dirs) or by a path to a TOML file."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or os.sep in name_or_path:
        return load_profile(candidate)
    check_name(name_or_path, "profile name")
    for file in profile_files(profiles_dir):
        if file.stem == name_or_path:
            return load_profile(file)
    known = ", ".join(f.stem for f in profile_files(profiles_dir)) or "none"
    raise NotFoundError(
        f"no profile named {name_or_path!r}",
        hint=f"known profiles: {known}; searched "
        + ", ".join(str(d) for d in paths.profile_dirs(profiles_dir)),
    )


def check_all(
    profiles_dir: str | os.PathLike | None = None,
) -> list[tuple[Path, ValidationError | None]]:
    """Validate every profile file; returns (file, error or None) for each."""
    results: list[tuple[Path, ValidationError | None]] = []
    for file in profile_files(profiles_dir):
        try:
            load_profile(file)
            results.append((file, None))
        except ValidationError as exc:
            results.append((file, exc))
    return results


def save_profile(path: str | os.PathLike, updates: dict[str, Any]) -> LoadedProfile:
    """Apply `updates` to a profile file, keeping comments and layout; validates first."""
    import tomlkit

    path = Path(path)
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    doc = tomlkit.parse(text)
    for key, value in updates.items():
        if value is None:
            doc.pop(key, None)
        else:
            doc[key] = value
    new_text = tomlkit.dumps(doc)
    data = parse_toml(path, new_text)
    data.setdefault("name", path.stem)
    from pydantic import ValidationError as PydanticError

    try:
        Profile.model_validate(data)
    except PydanticError as exc:
        raise pydantic_errors(exc, path, new_text, list(Profile.model_fields)) from None
    from cliffscope.store.atomic import atomic_write_text

    atomic_write_text(path, new_text)
    return load_profile(path)


PROFILE_TEMPLATE = """\
# cliffscope model profile. Every key is documented in `cliffscope profiles show --help`.
name = "{name}"
family = "auto"                 # auto, or one of `cliffscope models support`
model = "{model}"               # hub id, local path, or builtin:demo
# revision = "main"
dtype = "auto"                  # auto | float32 | float16 | bfloat16
# device_map = "auto"           # spread layers over all visible GPUs
# max_memory = {{ 0 = "20GiB", cpu = "64GiB" }}
attn_implementation = "sdpa"    # decoder: sdpa | eager | flash_attention_2
# vision_attn_implementation = "sdpa"  # vision tower; unset: sdpa, flash with a flash decoder
trust_remote_code = false       # runs the checkpoint's own code when true
batch_size = 8
max_new_tokens = 16
# system_prompt = "A chat between a curious human and an artificial intelligence assistant."
notes = ""
"""


def new_profile_text(name: str, model: str = "llava-hf/llava-1.5-7b-hf") -> str:
    check_name(name, "profile name")
    return PROFILE_TEMPLATE.format(name=name, model=model)

"""Finding tasks by name: the built-ins, plus user tasks written as TOML files.

A user task is `<name>.toml` in a tasks directory (`CLIFFSCOPE_TASKS`, then the platform's
user config dir `.../cliffscope/tasks`) or any path given on the command line. It holds
TaskSpec fields; `base = "vqav2"` starts from a built-in so a local copy of a benchmark is
three lines. Files are validated strictly: an unknown key or a wrong type is an error naming
the file, the line and the key. A user file with a built-in's name shadows the built-in.

    name = "pope-adversarial"
    base = "pope"
    data_path = "/data/pope"          # relative paths are relative to this file
    [[filters]]
    column = "category"
    equals = "adversarial"
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cliffscope import paths
from cliffscope.errors import CliffscopeError, Location, NotFoundError, ValidationError
from cliffscope.naming import check_name
from cliffscope.tasks.builtin import builtin_specs
from cliffscope.tasks.dataset_task import DatasetTask
from cliffscope.tasks.shapes_task import ShapesTask, shapes_config
from cliffscope.tasks.spec import Columns, TaskSpec
from cliffscope.tasks.task import Task
from cliffscope.tomlfile import find_key_line, parse_toml, pydantic_errors

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

_PATH_FIELDS = ("data_path", "image_dir", "images_path")
_MERGED_TABLES = ("columns", "shapes")


@dataclass(frozen=True)
class TaskEntry:
    """One row of the catalogue: a valid spec, or the error that keeps a user file out."""

    name: str
    origin: str  # "builtin" or the TOML file's path
    spec: TaskSpec | None
    error: CliffscopeError | None = None


def _builtins() -> dict[str, TaskSpec]:
    return {s.name: s for s in builtin_specs()}


def user_task_files() -> list[Path]:
    """`*.toml` in the user task dirs; earlier dirs shadow later ones by file name."""
    seen: dict[str, Path] = {}
    for directory in paths.user_tasks_dirs():
        if directory.is_dir():
            for file in sorted(directory.glob("*.toml")):
                seen.setdefault(file.stem, file)
    return sorted(seen.values(), key=lambda p: p.stem)


def catalogue() -> list[TaskEntry]:
    """Built-ins and user tasks (broken user files included, with their error)."""
    entries = {name: TaskEntry(name, "builtin", spec) for name, spec in _builtins().items()}
    for file in user_task_files():
        try:
            spec = load_task_file(file)
            entries[spec.name] = TaskEntry(spec.name, str(file), spec)
        except CliffscopeError as exc:
            entries[f"{file.stem} (invalid)"] = TaskEntry(file.stem, str(file), None, exc)
    builtin_order = list(_builtins())
    return sorted(
        entries.values(),
        key=lambda e: (
            e.origin != "builtin",
            builtin_order.index(e.name) if e.name in builtin_order else 0,
            e.name,
        ),
    )


def list_tasks() -> list[TaskSpec]:
    """Every usable task spec: built-ins first (in definition order), then user tasks."""
    return [e.spec for e in catalogue() if e.spec is not None]


def load_task_file(path: str | os.PathLike) -> TaskSpec:
    """Read and validate a user task TOML; errors name the file, the line and the key."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise NotFoundError("task file not found", where=Location(str(path)))
    data = parse_toml(path)  # reads it first: text that is not UTF-8 is a located error
    text = path.read_text(encoding="utf-8")
    data.setdefault("name", path.stem)
    base_name = data.pop("base", None)
    if base_name is not None:
        base = _builtins().get(str(base_name))
        if base is None:
            raise ValidationError(
                f"unknown base task {base_name!r}",
                where=Location(str(path), find_key_line(text, ("base",)), "base"),
                hint=f"built-in tasks: {', '.join(_builtins())}",
            )
        data = _merge(base.snapshot(), data)
    for key in _PATH_FIELDS:
        value = data.get(key)
        if isinstance(value, str) and "\0" in value:  # no OS accepts it; resolve() would raise
            where = Location(str(path), find_key_line(text, (key,)), key)
            raise ValidationError(f"{key} holds a NUL character", where=where)
        # os.path's expanduser leaves `~unknown-user` alone; pathlib's raises RuntimeError
        if isinstance(value, str) and value and not Path(os.path.expanduser(value)).is_absolute():
            data[key] = str((path.parent / value).resolve())
    from pydantic import ValidationError as PydanticError

    try:
        spec = TaskSpec.model_validate(data)
    except PydanticError as exc:
        raise pydantic_errors(exc, path, text) from None
    if spec.source == "shapes":
        try:
            shapes_config(spec.shapes)
        except ValidationError as exc:
            key = exc.where.key if exc.where and exc.where.key else "shapes"
            line = find_key_line(text, tuple(key.split(".")))
            raise ValidationError(
                exc.what, where=Location(str(path), line, key), hint=exc.hint
            ) from None
    return spec


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """`update` over `base`; the `columns` and `shapes` tables merge key by key."""
    out = dict(base)
    for key, value in update.items():
        if key in _MERGED_TABLES and isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


def find_spec(name_or_path: str) -> TaskSpec:
    """A task by name (user dirs, then built-ins) or by path to a TOML file."""
    if name_or_path.endswith(".toml") or os.sep in name_or_path:
        return load_task_file(name_or_path)
    check_name(name_or_path, "task name")
    for file in user_task_files():
        if file.stem == name_or_path:
            return load_task_file(file)
    builtin = _builtins().get(name_or_path)
    if builtin is not None:
        return builtin
    for entry in catalogue():
        if entry.spec is not None and entry.spec.name == name_or_path:
            return entry.spec
    known = ", ".join(e.name for e in catalogue() if e.spec is not None)
    raise NotFoundError(
        f"no task named {name_or_path!r}",
        hint=f"known tasks: {known}; user tasks live in "
        + ", ".join(str(d) for d in paths.user_tasks_dirs()),
    )


# ---- overrides (`--set key=value`) --------------------------------------------------------


def parse_set(items: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """`["n_shapes=3", "columns.id=qid"]` -> dict; values are read as TOML, else as strings."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValidationError(
                f"--set expects KEY=VALUE, got {item!r}", hint="e.g. --set n_shapes=3"
            )
        raw = raw.strip()
        try:
            value: Any = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        out[key] = value
    return out


def override_keys() -> list[str]:
    """Every key `--set` accepts."""
    import dataclasses

    from cliffscope.tasks.shapes import ShapesConfig

    top = [k for k in TaskSpec.model_fields if k not in ("columns", "shapes", "name")]
    cols = [f"columns.{k}" for k in Columns.model_fields]
    knobs = [f.name for f in dataclasses.fields(ShapesConfig)]
    return top + cols + knobs + [f"shapes.{k}" for k in knobs]


def apply_overrides(spec: TaskSpec, overrides: dict[str, Any]) -> TaskSpec:
    """A copy of `spec` with `--set` style overrides applied and validated."""
    import dataclasses

    from cliffscope.tasks.shapes import ShapesConfig

    knobs = {f.name for f in dataclasses.fields(ShapesConfig)}
    data = spec.snapshot()
    for key, value in overrides.items():
        if isinstance(value, str) and value.lower() in ("", "none", "null"):
            value = None
        if key.startswith("columns.") and key[8:] in Columns.model_fields:
            data.setdefault("columns", {})[key[8:]] = value
        elif key.startswith("shapes.") or key in knobs:  # bare `shapes` is the knob too
            data.setdefault("shapes", {})[key.removeprefix("shapes.")] = value
        elif key in TaskSpec.model_fields and key not in ("columns", "shapes", "name"):
            data[key] = value
        else:
            raise ValidationError(
                f"unknown task setting {key!r}",
                where=Location(key=key),
                hint="settable: " + ", ".join(override_keys()),
            )
    from pydantic import ValidationError as PydanticError

    try:
        return TaskSpec.model_validate(data)
    except PydanticError as exc:
        details = [
            f"{'.'.join(str(p) for p in e.get('loc', ())) or spec.name}: {e.get('msg')}"
            for e in exc.errors()
        ]
        first = exc.errors()[0].get("loc", ())
        raise ValidationError(
            f"invalid task settings: {details[0]}",
            where=Location(key=".".join(str(p) for p in first) or None),
            details=details[1:],
        ) from None


# ---- the entry points ---------------------------------------------------------------------


def make_task(spec: TaskSpec, data_path: str | os.PathLike | None = None) -> Task:
    """The Task class for a spec's source."""
    cls = ShapesTask if spec.source == "shapes" else DatasetTask
    return cls(spec, data_path)


def get_task(
    name_or_path: str,
    data_path: str | os.PathLike | None = None,
    overrides: dict[str, Any] | None = None,
) -> Task:
    """A ready task: found by name or path, overrides applied, pointed at local data if given."""
    spec = find_spec(name_or_path)
    if overrides:
        spec = apply_overrides(spec, overrides)
    if data_path is not None:
        if spec.source == "shapes":
            raise ValidationError(
                f"task {spec.name!r} is procedural and reads no data",
                hint="drop --data, or use --set n_shapes=... to change the scenes",
            )
        data_path = str(Path(data_path).expanduser().resolve())
    return make_task(spec, data_path)


def task_from_snapshot(snapshot: dict[str, Any]) -> Task:
    """Rebuild the exact task a run recorded (`Task.snapshot()`, run.toml [task])."""
    from pydantic import ValidationError as PydanticError

    try:
        spec = TaskSpec.model_validate(snapshot["spec"])
    except (KeyError, TypeError, PydanticError) as exc:
        raise ValidationError(
            "the run's [task] table is not a valid task snapshot", details=[str(exc)[:300]]
        ) from None
    return make_task(spec, snapshot.get("data_path"))

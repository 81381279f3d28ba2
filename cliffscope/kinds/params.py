"""Typed run parameters: one pydantic model per run kind, read by every front end.

A kind's `Params` model is the only place its parameters, help texts and defaults are
written. `ParamField`s derived from it generate the kind's click options (`cli.kind_cmd`) and
its fields in the dashboard's launch form (`tui.screens.launch`); the worker reads run.toml's
[params] through the same model, so a default can never differ between them.

Declare a field with `param(default, help, ...)`: `flag` names the CLI option (default
`--field-name`), `label` the form's label, `labels` the words for choice values, `choices` a
callable giving the allowed values at run time (e.g. the strategy registry), `hidden` keeps a
field (e.g. `checkpoint_s`) off the CLI and the form, `summary=False` keeps it out of one-line
summaries. Validation errors name the flag (CLI) or the label (form).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from cliffscope.errors import ValidationError

_EXTRA = "cliffscope"


def param(
    default: Any,
    help: str,
    *,
    flag: str | None = None,
    label: str | None = None,
    labels: dict[Any, str] | None = None,
    choices: Callable[[], list[Any]] | None = None,
    placeholder: str = "",
    hidden: bool = False,
    summary: bool = True,
    **constraints: Any,
) -> Any:
    """A parameter field (see the module docstring); `constraints` are pydantic's (ge, le …)."""
    extra = {
        "flag": flag,
        "label": label,
        "labels": labels or {},
        "choices": choices,
        "placeholder": placeholder,
        "hidden": hidden,
        "summary": summary,
    }
    return Field(default, description=help, json_schema_extra={_EXTRA: extra}, **constraints)


@dataclass(frozen=True)
class ParamField:
    """One parameter as a front end sees it."""

    name: str
    type: str  # "choice" | "bool" | "int" | "float" | "text"
    default: Any
    help: str
    flag: str
    label: str
    optional: bool = False
    minimum: float | None = None
    maximum: float | None = None
    placeholder: str = ""
    hidden: bool = False
    summary: bool = True
    labels: dict[Any, str] = field(default_factory=dict)
    fixed_choices: tuple[Any, ...] = ()
    choices_from: Callable[[], list[Any]] | None = None

    def choices(self) -> list[Any]:
        """The allowed values, asked now (a registry may have grown since import)."""
        return list(self.choices_from()) if self.choices_from else list(self.fixed_choices)

    def choice_label(self, value: Any) -> str:
        return self.labels.get(value, str(value))

    @property
    def dom_id(self) -> str:
        return self.name.replace("_", "-")


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """(annotation without None, whether None is allowed)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(args) < len(typing.get_args(annotation))
        return (args[0] if len(args) == 1 else annotation), optional
    return annotation, False


def _bounds(info: Any) -> tuple[float | None, float | None]:
    lo = hi = None
    for item in info.metadata:
        lo = getattr(item, "ge", lo)
        hi = getattr(item, "le", hi)
    return lo, hi


def _field(name: str, info: Any) -> ParamField:
    extra = (
        (info.json_schema_extra or {}) if isinstance(info.json_schema_extra, dict) else {}
    ).get(_EXTRA, {})
    annotation, optional = _unwrap(info.annotation)
    fixed: tuple[Any, ...] = ()
    if typing.get_origin(annotation) is Literal:
        kind, fixed = "choice", typing.get_args(annotation)
    elif extra.get("choices"):
        kind = "choice"
    elif annotation is bool:
        kind = "bool"
    elif annotation is int:
        kind = "int"
    elif annotation is float:
        kind = "float"
    else:
        kind = "text"
    lo, hi = _bounds(info)
    return ParamField(
        name=name,
        type=kind,
        default=info.default,
        help=info.description or "",
        flag=extra.get("flag") or "--" + name.replace("_", "-"),
        label=extra.get("label") or name.replace("_", " "),
        optional=optional,
        minimum=lo,
        maximum=hi,
        placeholder=extra.get("placeholder", ""),
        hidden=bool(extra.get("hidden")),
        summary=extra.get("summary", True),
        labels=dict(extra.get("labels") or {}),
        fixed_choices=fixed,
        choices_from=extra.get("choices"),
    )


class KindParams(BaseModel):
    """Base of a kind's parameters. Unknown keys are kept: run.toml's [params] also holds
    launch settings (`max_new_tokens`) and what older releases wrote."""

    model_config = ConfigDict(extra="allow", validate_default=False)

    @classmethod
    def fields(cls, visible: bool = False) -> list[ParamField]:
        out = [_field(name, info) for name, info in cls.model_fields.items()]
        return [f for f in out if not f.hidden] if visible else out

    @classmethod
    def parse(cls, raw: dict[str, Any], naming: str = "label") -> KindParams:
        """Validated parameters; a bad value raises ValidationError naming the field by its
        CLI flag (`naming="flag"`) or its form label (`naming="label"`)."""
        by_name = {f.name: f for f in cls.fields()}
        for name, value in raw.items():
            spec = by_name.get(name)
            if spec is not None and spec.type == "choice" and value is not None:
                allowed = spec.choices()
                if value not in allowed:
                    shown = spec.flag if naming == "flag" else spec.label
                    raise ValidationError(
                        f"{shown}: unknown choice {value!r}",
                        hint="one of " + ", ".join(map(str, allowed)),
                    )
        try:
            return cls.model_validate(raw)
        except pydantic.ValidationError as exc:
            error = exc.errors()[0]
            name = str(error["loc"][0]) if error.get("loc") else ""
            spec = by_name.get(name)
            shown = (spec.flag if naming == "flag" else spec.label) if spec else name
            message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
            raise ValidationError(f"{shown}: {message}" if shown else message) from None

    def run_params(self) -> dict[str, Any]:
        """What goes into run.toml's [params]: every visible field, hidden ones only when set,
        extras as given; None values left out (TOML has no null)."""
        out: dict[str, Any] = {}
        for spec in self.fields():
            if spec.hidden and spec.name not in self.model_fields_set:
                continue
            out[spec.name] = getattr(self, spec.name)
        out.update(self.model_extra or {})
        return {k: v for k, v in out.items() if v is not None}

    @classmethod
    def summary(cls, params: dict[str, Any]) -> str:
        """`query=last, heads=mean, …`: run.toml params without those kept out of summaries."""
        hide = {f.name for f in cls.fields() if not f.summary}
        return ", ".join(f"{k}={v}" for k, v in params.items() if k not in hide)

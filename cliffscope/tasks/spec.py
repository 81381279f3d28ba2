"""`TaskSpec`: everything that defines a task, as plain data that round-trips through TOML.

A task is a dataset source + split + a mapping from the dataset's own column names to the
fields cliffscope needs + a prompt template + an answer kind + a metric name. Keeping it plain
data (no callables) is what lets a run directory snapshot the exact task it ran and a user
define a new task in a TOML file without writing Python.

Column paths address nested data: `answers` is a column, `answers[].answer` maps over a list
of records and takes each record's `answer` field, `meta.label` reads a struct field.
"""

from __future__ import annotations

import re
import string
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cliffscope.errors import ValidationError
from cliffscope.naming import check_name

Source = Literal["shapes", "hf"]
AnswerKind = Literal["short", "choice", "caption"]
Scalar = str | int | float | bool

#: Placeholders a prompt template may use.
TEMPLATE_FIELDS = ("question", "choices", "context")
_SEGMENT = r"[^.\[\]\s][^.\[\]]*(\[\])?"
_PATH = re.compile(rf"^{_SEGMENT}(\.{_SEGMENT})*$")


def check_path(value: str) -> str:
    """A column path: `col`, `col.field`, `col[].field` (map over a list)."""
    if not _PATH.match(value):
        raise ValueError(
            f"{value!r} is not a column path (use 'col', 'col.field' or 'col[].field')"
        )
    return value


def path_root(path: str) -> str:
    """The top-level column a path reads (`answers[].answer` -> `answers`)."""
    return path.split(".", 1)[0].removesuffix("[]")


class Columns(BaseModel):
    """Where each field lives in the dataset (names exactly as in the dataset card).

    An empty string unsets a field (TOML has no null): `question = ""` for captioning.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str | None = Field(None, description="unique sample id column; none = row number")
    image: str = Field("image", description="image column (Image feature, bytes or file name)")
    question: str | None = Field("question", description="question text column")
    answers: str | None = Field(None, description="path to a list of reference answers")
    answer: str | None = Field(None, description="single answer (text, or index into choices)")
    choices: str | None = Field(None, description="list of options for multiple choice")
    context: str | None = Field(None, description="optional context shown before the question")
    image_key: str | None = Field(
        None, description="column holding the key of the image in a separate images table"
    )
    meta: list[str] = Field(default_factory=list, description="extra columns copied into meta")

    @field_validator(
        "id", "image", "question", "answers", "answer", "choices", "context", "image_key"
    )
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        return None if value is None or value == "" else check_path(value)

    @field_validator("meta")
    @classmethod
    def _meta_paths(cls, value: list[str]) -> list[str]:
        return [check_path(v) for v in value]

    def mapped(self) -> dict[str, str]:
        """Field name -> column path, for every field that is set."""
        out = {k: v for k, v in self.model_dump().items() if isinstance(v, str)}
        out.update({f"meta.{m}": m for m in self.meta})
        return out


class RowFilter(BaseModel):
    """Keep only rows whose `column` is present / equals a value / is one of some values."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    column: str
    present: bool | None = None
    equals: Scalar | None = None
    one_of: list[Scalar] | None = None

    @field_validator("column")
    @classmethod
    def _col(cls, value: str) -> str:
        check_path(value)
        if "." in value or "[" in value:
            raise ValueError("filters apply to top-level columns only")
        return value

    @model_validator(mode="after")
    def _one_condition(self) -> RowFilter:
        given = [x is not None for x in (self.present, self.equals, self.one_of)]
        if sum(given) != 1:
            raise ValueError("give exactly one of present, equals, one_of")
        return self

    def keeps(self, value: Any, missing: bool) -> bool:
        if self.present is not None:
            return (not missing) == self.present
        if self.equals is not None:
            return value == self.equals
        return value in (self.one_of or [])

    def describe(self) -> str:
        if self.present is not None:
            return f"{self.column} {'present' if self.present else 'missing'}"
        if self.equals is not None:
            return f"{self.column} == {self.equals!r}"
        return f"{self.column} in {self.one_of!r}"


class TaskSpec(BaseModel):
    """A named task. Field descriptions double as `tasks show` help."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="task name, used on the command line")
    description: str = Field("", description="one line shown in `tasks list`")
    source: Source = Field("hf", description="'hf' (datasets) or 'shapes' (procedural)")
    hub_id: str | None = Field(None, description="Hugging Face dataset id")
    config_name: str | None = Field(None, description="dataset config (subset) name")
    split: str = Field("validation", description="split to read")
    data_path: str | None = Field(
        None, description="local copy: save_to_disk folder, Parquet file/folder, or JSONL file"
    )
    image_dir: str | None = Field(
        None, description="folder that relative image file names resolve against"
    )
    images_config: str | None = Field(
        None, description="config holding images keyed by `id` (joined on columns.image_key)"
    )
    images_path: str | None = Field(None, description="local copy of the images table")
    columns: Columns = Field(default_factory=Columns)
    filters: list[RowFilter] = Field(default_factory=list, description="rows to keep")
    prompt_template: str = Field(
        "{question}", description="Python format string over {question}, {choices}, {context}"
    )
    answer_kind: AnswerKind = Field("short", description="short | choice | caption")
    metric: str = Field("exact_match", description="metric name in the metrics registry")
    max_new_tokens: int = Field(16, ge=1, le=4096, description="generation length cap")
    shapes: dict[str, Any] = Field(
        default_factory=dict, description="ShapesConfig knobs (source = 'shapes')"
    )
    pool_size: int = Field(10_000, ge=1, le=10_000_000, description="shapes sample pool size")

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        try:
            check_name(value, "task name")
        except ValidationError as exc:
            raise ValueError(exc.hint or exc.what) from None
        return value

    @field_validator("prompt_template")
    @classmethod
    def _template(cls, value: str) -> str:
        try:
            names = {f for _, f, _, _ in string.Formatter().parse(value) if f is not None}
        except ValueError as exc:
            raise ValueError(f"bad template ({exc}); write literal braces as {{{{ }}}}") from None
        unknown = sorted(n for n in names if n not in TEMPLATE_FIELDS)
        if unknown:
            raise ValueError(
                f"unknown placeholder(s) {unknown}; use {list(TEMPLATE_FIELDS)} "
                "and write literal braces as {{ }}"
            )
        return value

    @field_validator("metric")
    @classmethod
    def _metric(cls, value: str) -> str:
        from cliffscope.metrics.registry import is_metric, metric_names

        if not value.strip():
            raise ValueError("must not be empty")
        if not is_metric(value):  # caught here, not in the worker after the model has loaded
            raise ValueError(f"unknown metric {value!r}; known: {', '.join(metric_names())}")
        return value

    @model_validator(mode="after")
    def _coherent(self) -> TaskSpec:
        cols = self.columns
        if self.source == "shapes":
            if self.answer_kind == "choice":
                raise ValueError("shapes tasks are 'short' (VQA) or 'caption'")
            return self
        if self.shapes:
            raise ValueError("'shapes' knobs only apply to source = 'shapes'")
        if not self.hub_id and not self.data_path:
            raise ValueError("an 'hf' task needs hub_id or data_path")
        if not cols.answers and not cols.answer:
            raise ValueError("map columns.answers (a list) or columns.answer (one value)")
        if self.answer_kind == "choice":
            if not cols.choices:
                raise ValueError("answer_kind = 'choice' needs columns.choices")
            if "{choices}" not in self.prompt_template:
                raise ValueError("a 'choice' prompt_template must contain {choices}")
        if self.answer_kind != "caption" and not cols.question:
            raise ValueError("columns.question is required unless answer_kind = 'caption'")
        if "{question}" in self.prompt_template and not cols.question:
            raise ValueError("prompt_template uses {question} but columns.question is not set")
        if bool(self.images_config or self.images_path) != bool(cols.image_key):
            raise ValueError("images_config/images_path and columns.image_key go together")
        return self

    def snapshot(self) -> dict[str, Any]:
        """Every field, TOML-safe, for run.toml and `tasks show --json`. None is dropped,
        except in `columns`, where it becomes "" so that a default cannot creep back in."""
        data = self.model_dump()
        data["columns"] = {k: "" if v is None else v for k, v in data["columns"].items()}
        return _drop_none(data)


def _drop_none(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _drop_none(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, (list, tuple)):
        return [_drop_none(v) for v in obj]
    return obj


def format_choices(choices: list[str]) -> str:
    """`A. first\\nB. second`, the LLaVA / lmms-eval multiple-choice layout."""
    return "\n".join(f"{string.ascii_uppercase[i]}. {c}" for i, c in enumerate(choices))


def render_prompt(template: str, question: str, choices: list[str] | None, context: str) -> str:
    """Apply a validated template; `context` becomes `Context: ...\\n` when non-empty."""
    return template.format(
        question=question,
        choices=format_choices(choices or []),
        context=f"Context: {context}\n" if context else "",
    )

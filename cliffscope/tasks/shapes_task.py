"""`ShapesTask`: the procedural scenes of `shapes.py` behind the `Task` interface.

Ids are `shapes-000000` .. `shapes-<pool_size - 1>`; id `shapes-000123` is always drawn from
index 123 with the task's knobs, so a subset recorded in a run can be redrawn exactly.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import TYPE_CHECKING, Any

from cliffscope.errors import Location, ValidationError
from cliffscope.tasks.spec import TaskSpec, render_prompt
from cliffscope.tasks.task import Sample, Task

if TYPE_CHECKING:
    from cliffscope.tasks.shapes import ShapesConfig


def shapes_config(knobs: dict[str, Any]) -> ShapesConfig:
    """Validate shapes knobs; errors carry `Location(key="shapes.<knob>")`."""
    from pydantic import TypeAdapter
    from pydantic import ValidationError as PydanticError

    from cliffscope.tasks.shapes import ShapesConfig

    known = [f.name for f in dataclasses.fields(ShapesConfig)]
    for key in knobs:
        if key not in known:
            raise ValidationError(
                f"unknown shapes knob {key!r}",
                where=Location(key=f"shapes.{key}"),
                hint=f"known knobs: {', '.join(known)}",
            )
    try:
        return TypeAdapter(ShapesConfig).validate_python(dict(knobs))
    except PydanticError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err.get("loc", ())[:1]) or "shapes"
        raise ValidationError(
            f"{err.get('msg', 'invalid value')} (got {err.get('input')!r})",
            where=Location(key=f"shapes.{key}"),
        ) from None
    except ValidationError as exc:
        key = exc.where.key if exc.where and exc.where.key else ""
        raise ValidationError(
            exc.what, where=Location(key=f"shapes.{key}".rstrip(".")), hint=exc.hint
        ) from None


_SHAPES_ID = re.compile(r"^shapes-(\d{6,})$")


class ShapesTask(Task):
    """Procedural scenes: id `shapes-000123` is drawn from index 123, the same every time."""

    def __init__(self, spec: TaskSpec, data_path: str | os.PathLike | None = None) -> None:
        super().__init__(spec, None)
        self.config = shapes_config(spec.shapes)

    def ids(self) -> list[str]:
        from cliffscope.tasks.shapes import sample_id

        return [sample_id(i) for i in range(self.spec.pool_size)]

    def __len__(self) -> int:
        return self.spec.pool_size

    def get(self, sample_id: str) -> Sample:
        from cliffscope.tasks import shapes

        match = _SHAPES_ID.match(sample_id)
        index = int(match.group(1)) if match else -1
        if not match or index >= self.spec.pool_size or shapes.sample_id(index) != sample_id:
            raise self._unknown(sample_id)
        if self.spec.answer_kind == "caption":
            raw = shapes.caption_sample(self.config, index)
            question, references = "", list(raw["caption_refs"])
        else:
            raw = shapes.vqa_sample(self.config, index)
            question, references = raw["question"], list(raw["answers"])
        return Sample(
            id=raw["id"],
            image=raw["image"],
            question=question,
            prompt=render_prompt(self.spec.prompt_template, question, None, ""),
            references=references,
            meta=dict(raw["meta"]),
        )

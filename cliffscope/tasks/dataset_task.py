"""`DatasetTask`: rows of a dataset split behind the `Task` interface.

Rows without an image or without an answer are *skipped with a count* when the id list is
built (`task.skipped`, also logged), so a run never stalls on a gap in a 200k-row split and the
id list stays the same every time. An image that exists but cannot be decoded (corrupt, zero
size) is only discovered on `get`, which then raises a CliffscopeError naming the sample.
Repeated ids are kept and renamed `ID#2`, `ID#3`, ... in row order (`task.renamed`).
"""

from __future__ import annotations

import logging
import os
import string
from collections import Counter
from typing import TYPE_CHECKING, Any

from cliffscope.errors import CliffscopeError, Location, NotFoundError, ValidationError
from cliffscope.tasks import loading
from cliffscope.tasks.images import load_rgb
from cliffscope.tasks.spec import TaskSpec, path_root, render_prompt
from cliffscope.tasks.task import Sample, Task

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger("cliffscope.tasks")


class DatasetTask(Task):
    """Rows of a dataset split; opened on first use, images decoded per `get`."""

    def __init__(self, spec: TaskSpec, data_path: str | os.PathLike | None = None) -> None:
        super().__init__(spec, data_path)
        self._rows: loading.RowSource | None = None
        self._ids: list[str] | None = None
        self._index: dict[str, int] = {}
        self._images: loading.RowSource | None = None
        self._image_index: dict[str, int] | None = None

    @property
    def rows(self) -> loading.RowSource:
        if self._rows is None:
            self._rows = loading.open_rows(self.spec, self.data_path)
            self._check_columns(self._rows)
        return self._rows

    def _check_columns(self, rows: loading.RowSource) -> None:
        present = set(rows.columns())
        wanted = dict(self.spec.columns.mapped())
        if self.spec.columns.image_key:
            wanted.pop("image", None)  # the image lives in the images table
        wanted.update({f"filters.{f.column}": f.column for f in self.spec.filters})
        missing = {k: v for k, v in wanted.items() if path_root(v) not in present}
        if missing:
            field_name, column = next(iter(missing.items()))
            raise ValidationError(
                f"task {self.name!r}: column {path_root(column)!r} (for {field_name}) "
                f"is not in the data",
                where=Location(rows.origin, key=_setting(field_name)),
                details=[f"columns in the data: {', '.join(sorted(present))}"],
                hint=f"map it with --set {_setting(field_name)}=NAME, or unset it with '' "
                "([columns] in a task TOML)",
            )

    def _column(self, path: str) -> list[Any]:
        root = path_root(path)
        values = self.rows.values(root)
        if path == root:
            return values
        return [loading.extract({root: v}, path) for v in values]

    def ids(self) -> list[str]:
        if self._ids is None:
            self._build_ids()
        assert self._ids is not None
        return self._ids

    def _build_ids(self) -> None:
        rows, cols = self.rows, self.spec.columns
        keep = [True] * len(rows)
        skipped: Counter[str] = Counter()

        def drop(mask: list[bool], reason: str) -> None:
            for i, bad in enumerate(mask):
                if bad and keep[i]:
                    keep[i] = False
                    skipped[reason] += 1

        for flt in self.spec.filters:
            if flt.present is not None:
                miss = rows.missing(flt.column)
                drop([not flt.keeps(None, m) for m in miss], f"filter: {flt.describe()}")
            else:
                vals = rows.values(flt.column)
                drop([not flt.keeps(v, False) for v in vals], f"filter: {flt.describe()}")
        drop(rows.missing(path_root(cols.image_key or cols.image)), "no image")
        drop(rows.missing(path_root(cols.answers or cols.answer or "")), "no answer")

        raw = self._column(cols.id) if cols.id else list(range(len(rows)))
        ids: list[str] = []
        seen: Counter[str] = Counter()
        for i, value in enumerate(raw):
            if not keep[i]:
                continue
            base = str(value)
            seen[base] += 1
            sample_id = base if seen[base] == 1 else f"{base}#{seen[base]}"
            ids.append(sample_id)
            self._index[sample_id] = i
        self.renamed = sum(n - 1 for n in seen.values() if n > 1)
        self.skipped = dict(skipped)
        if self.skipped:
            log.warning("task %s skipped rows: %s", self.name, self.skipped)
        if self.renamed:
            log.warning("task %s: %d repeated ids renamed to ID#n", self.name, self.renamed)
        if not ids:
            raise CliffscopeError(
                f"task {self.name!r} has no usable rows in {rows.origin} ({len(rows)} rows read)",
                details=[f"{k}: {v}" for k, v in self.skipped.items()],
                hint="check the split (test splits often have no answers) and the filters",
            )
        self._ids = ids

    def get(self, sample_id: str) -> Sample:
        self.ids()
        if sample_id not in self._index:
            raise self._unknown(sample_id)
        index = self._index[sample_id]
        cols = self.spec.columns
        try:
            row = _read_row(self.rows, index)
            image = self._image(row)
            question = _text(loading.extract(row, cols.question)) if cols.question else ""
            context = _text(loading.extract(row, cols.context)) if cols.context else ""
            choices = None
            if cols.choices:
                choices = [_text(c) for c in (loading.extract(row, cols.choices) or [])]
            references = self._references(row, choices)
        except CliffscopeError as exc:
            raise CliffscopeError(
                f"task {self.name!r}, sample {sample_id!r} (row {index}): {exc.what}",
                where=Location(self.rows.origin),
                hint=exc.hint or "add a [[filters]] entry to skip such rows",
            ) from None
        meta: dict[str, Any] = {"row": index}
        for path in cols.meta:
            meta[path] = _plain(loading.extract(row, path))
        if context:
            meta["context"] = context
        return Sample(
            id=sample_id,
            image=image,
            question=question,
            prompt=render_prompt(self.spec.prompt_template, question, choices, context),
            references=references,
            choices=choices,
            meta=meta,
        )

    def _image(self, row: dict[str, Any]) -> Image.Image:
        cols = self.spec.columns
        if not cols.image_key:
            value = loading.extract(row, cols.image)
            if value is None:
                raise ValidationError(f"no image in column {cols.image!r}")
            return load_rgb(value, self.rows.base_dir)
        key = str(loading.extract(row, cols.image_key))
        images = self._images_table()
        assert self._image_index is not None
        if key not in self._image_index:
            raise NotFoundError(f"image {key!r} is not in the images table ({images.origin})")
        value = images.row(self._image_index[key]).get("image")
        return load_rgb(value, images.base_dir)

    def _images_table(self) -> loading.RowSource:
        if self._images is None:
            images = loading.open_images(self.spec, self.data_path)
            if not {"id", "image"} <= set(images.columns()):
                raise ValidationError(
                    f"images table {images.origin} needs columns 'id' and 'image'",
                    details=[f"it has: {', '.join(images.columns())}"],
                )
            self._image_index = {str(v): i for i, v in enumerate(images.values("id"))}
            self._images = images
        return self._images

    def _references(self, row: dict[str, Any], choices: list[str] | None) -> list[str]:
        cols = self.spec.columns
        if cols.answers:
            refs = loading.as_strings(loading.extract(row, cols.answers))
        else:
            raw = loading.extract(row, cols.answer or "")
            refs = [choice_letter(raw, choices)] if choices is not None else loading.as_strings(raw)
        if choices is not None and cols.answers:
            refs = [choice_letter(r, choices) for r in refs]
        if not refs:
            raise ValidationError("no reference answer")
        return refs


def _setting(field_name: str) -> str:
    return "filters" if field_name.startswith("filters.") else f"columns.{field_name}"


def choice_letter(answer: Any, choices: list[str]) -> str:
    """The option letter an answer denotes: an index (int), a letter, or an option's text."""
    letters = string.ascii_uppercase[: len(choices)]
    if isinstance(answer, int) and not isinstance(answer, bool):
        if 0 <= answer < len(choices):
            return letters[answer]
        raise ValidationError(f"answer index {answer} is out of range for {len(choices)} choices")
    text = _text(answer).strip()
    if len(text) == 1 and text.upper() in letters:
        return text.upper()
    hits = [i for i, c in enumerate(choices) if c.strip().lower() == text.lower()]
    if hits:
        return letters[hits[0]]
    raise ValidationError(f"answer {answer!r} is not an index, a letter or one of the choices")


def _text(value: Any) -> str:
    return "" if value is None else value if isinstance(value, str) else str(value)


def _plain(value: Any) -> Any:
    """A JSON/TOML-friendly copy of a meta value."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


def _read_row(rows: loading.RowSource, index: int) -> dict[str, Any]:
    """Arrow datasets decode images when a row is read: an image PIL cannot open (corrupt, or a
    decompression bomb) is that sample's problem, not the run's."""
    from PIL import Image

    try:
        return rows.row(index)
    except (OSError, Image.DecompressionBombError) as exc:
        raise ValidationError(f"image could not be decoded ({exc})") from None

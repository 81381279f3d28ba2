"""Row sources: the rows of a task's split, from the hub or from a local copy.

Four places rows can come from, one interface (`RowSource`):

- a hub id, through `datasets.load_dataset(hub_id, config, split=...)`;
- a `save_to_disk` folder (`datasets.load_from_disk`; a DatasetDict picks the split);
- Parquet: one file, or a folder (a downloaded hub snapshot works: files named
  `<split>-*.parquet` are picked, under `<config>/` when that folder exists);
- JSONL, one JSON object per line, whose image column holds file names relative to
  `image_dir` (default: the JSONL file's folder).

Nothing here decodes an image until `row(i)` is called: ids, filters and missing-value checks
read plain columns only, so listing a 200k-row split does not touch its 30 GB of images.
`datasets` and `pyarrow` are imported inside functions (domain core stays light).
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cliffscope.errors import CliffscopeError, Location, NotFoundError, ValidationError
from cliffscope.tasks.spec import TaskSpec

_DISK_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")
_OFFLINE_HINT = (
    "no network here? on a machine that has one run "
    "`datasets.load_dataset(HUB_ID, CONFIG, split=SPLIT).save_to_disk(DIR)` (or download the "
    "Parquet files), copy DIR over, and pass `--data DIR` (or set data_path in a task TOML); "
    "JSONL + an image folder works too"
)


class RowSource(ABC):
    """The rows of one split. Columns are top-level names; `row(i)` decodes images."""

    #: folder that relative image file names resolve against (None: absolute names only)
    base_dir: Path | None = None
    #: where the rows came from, for messages
    origin: str = ""

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def columns(self) -> list[str]: ...

    @abstractmethod
    def values(self, column: str) -> list[Any]:
        """Python values of a (non-image) column, in row order."""

    @abstractmethod
    def missing(self, column: str) -> list[bool]:
        """Per row: is the value null, an empty string or an empty list (never decodes)."""

    @abstractmethod
    def row(self, index: int) -> dict[str, Any]: ...


class ArrowRows(RowSource):
    """A `datasets.Dataset` (memory-mapped Arrow); images decode per row on access."""

    def __init__(self, dataset: Any, origin: str, base_dir: Path | None = None) -> None:
        self.dataset = dataset
        self.origin = origin
        self.base_dir = base_dir

    def __len__(self) -> int:
        return len(self.dataset)

    def columns(self) -> list[str]:
        return list(self.dataset.column_names)

    def _arrow(self, column: str) -> Any:
        return self.dataset.with_format("arrow")[column]

    def values(self, column: str) -> list[Any]:
        return self._arrow(column).to_pylist()

    def missing(self, column: str) -> list[bool]:
        import pyarrow as pa
        import pyarrow.compute as pc

        arr = self._arrow(column)
        mask = pc.is_null(arr)
        kind = arr.type
        if pa.types.is_list(kind) or pa.types.is_large_list(kind):
            mask = pc.or_(mask, pc.fill_null(pc.equal(pc.list_value_length(arr), 0), True))
        elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
            mask = pc.or_(mask, pc.fill_null(pc.equal(arr, ""), True))
        elif pa.types.is_struct(kind) and {"bytes", "path"} <= {f.name for f in kind}:
            both = pc.and_(
                pc.is_null(pc.struct_field(arr, "bytes")), pc.is_null(pc.struct_field(arr, "path"))
            )
            mask = pc.or_(mask, pc.fill_null(both, True))
        return [bool(m) for m in mask.to_pylist()]

    def row(self, index: int) -> dict[str, Any]:
        return self.dataset[int(index)]


class JsonlRows(RowSource):
    """Rows of a JSONL file held as dicts; image values are file names."""

    def __init__(self, rows: list[dict[str, Any]], origin: str, base_dir: Path) -> None:
        self.rows = rows
        self.origin = origin
        self.base_dir = base_dir
        seen: dict[str, None] = {}
        for r in rows:
            seen.update(dict.fromkeys(r))
        self._columns = list(seen)

    def __len__(self) -> int:
        return len(self.rows)

    def columns(self) -> list[str]:
        return self._columns

    def values(self, column: str) -> list[Any]:
        return [r.get(column) for r in self.rows]

    def missing(self, column: str) -> list[bool]:
        return [r.get(column) in (None, "", []) for r in self.rows]

    def row(self, index: int) -> dict[str, Any]:
        return self.rows[int(index)]


# ---- column paths -------------------------------------------------------------------------


def extract(row: dict[str, Any], path: str) -> Any:
    """Evaluate a column path: `a`, `a.b`, `a[].b` (map over a list). Missing -> None."""
    values: list[Any] = [row]
    mapped = False
    for segment in path.split("."):
        many = segment.endswith("[]")
        name = segment.removesuffix("[]")
        nxt: list[Any] = []
        for value in values:
            item = value.get(name) if isinstance(value, dict) else None
            if many:
                nxt.extend(item or [])
            else:
                nxt.append(item)
        values = nxt
        mapped = mapped or many
    return values if mapped else values[0]


def as_strings(value: Any) -> list[str]:
    """A reference value as a list of non-empty strings (None -> [], "x" -> ["x"])."""
    if value is None:
        return []
    items = value if isinstance(value, (list, tuple)) else [value]
    out = []
    for item in items:
        if item is None:
            continue
        text = (
            item
            if isinstance(item, str)
            else json.dumps(item)
            if isinstance(item, dict)
            else str(item)
        )
        if text.strip():
            out.append(text)
    return out


# ---- opening sources ----------------------------------------------------------------------


def open_rows(spec: TaskSpec, data_path: str | os.PathLike | None = None) -> RowSource:
    """The rows of `spec`'s split: from `data_path` (or spec.data_path) if given, else the hub."""
    path = data_path or spec.data_path
    if path:
        return open_local(Path(path), spec.split, spec.config_name, spec.image_dir)
    return open_hub(spec.hub_id or "", spec.config_name, spec.split)


def open_images(spec: TaskSpec, data_path: str | os.PathLike | None = None) -> RowSource:
    """The separate images table of a task whose rows only hold an image key (GQA)."""
    if spec.images_path:
        return open_local(Path(spec.images_path), spec.split, None, spec.image_dir)
    path = data_path or spec.data_path
    if path:
        folder = Path(path)
        if spec.images_config and folder.is_dir() and (folder / spec.images_config).is_dir():
            return open_local(folder / spec.images_config, spec.split, None, spec.image_dir)
        raise NotFoundError(
            f"task {spec.name!r} reads its images from a separate table "
            f"({spec.images_config or 'images'}), which was not found next to {path}",
            hint="pass it with --set images_path=PATH (a save_to_disk folder or Parquet)",
        )
    return open_hub(spec.hub_id or "", spec.images_config, spec.split)


def open_hub(hub_id: str, config: str | None, split: str) -> RowSource:
    """`datasets.load_dataset`; any failure becomes one error that says how to go offline."""
    import datasets

    label = f"{hub_id}" + (f" ({config})" if config else "") + f", split {split!r}"
    try:
        ds = datasets.load_dataset(hub_id, config, split=split)
    except Exception as exc:  # noqa: BLE001 - network, auth, missing dataset, bad split ...
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        raise CliffscopeError(
            f"could not load {label} from the Hugging Face hub (unreachable or not found)",
            details=[f"{type(exc).__name__}: {first}"],
            hint=_OFFLINE_HINT.replace("HUB_ID", repr(hub_id))
            .replace("CONFIG", repr(config))
            .replace("SPLIT", repr(split)),
        ) from None
    return ArrowRows(ds, f"hub:{label}")


def open_local(
    path: Path, split: str, config: str | None = None, image_dir: str | None = None
) -> RowSource:
    """A save_to_disk folder, Parquet file(s) or a JSONL file. A relative `image_dir` is
    relative to the data folder (or to the data file's folder)."""
    path = path.expanduser()
    if not path.exists():
        raise NotFoundError(
            "local dataset not found",
            where=Location(str(path)),
            hint="--data takes a save_to_disk folder, a Parquet file or folder, or a JSONL file",
        )
    anchor = path if path.is_dir() else path.parent
    base = anchor / Path(image_dir).expanduser() if image_dir else anchor
    if path.is_dir() and any((path / m).exists() for m in _DISK_MARKERS):
        return _from_disk(path, split, base)
    if path.is_dir() or path.suffix == ".parquet":
        return _from_parquet(_parquet_files(path, split, config), path, base)
    if path.suffix in (".jsonl", ".json"):
        return read_jsonl(path, base)
    raise ValidationError(
        f"don't know how to read {path.name}",
        where=Location(str(path)),
        hint="use a save_to_disk folder, .parquet file(s) or a .jsonl file",
    )


def _from_disk(path: Path, split: str, base: Path) -> RowSource:
    import datasets

    loaded = datasets.load_from_disk(str(path))
    if isinstance(loaded, datasets.DatasetDict):
        if split not in loaded:
            raise NotFoundError(
                f"split {split!r} is not in {path}",
                where=Location(str(path)),
                hint=f"available splits: {', '.join(loaded)}; pass --set split=NAME",
            )
        loaded = loaded[split]
    return ArrowRows(loaded, f"disk:{path}", base)


def _parquet_files(path: Path, split: str, config: str | None) -> list[Path]:
    if path.is_file():
        return [path]
    root = path / config if config and (path / config).is_dir() else path
    files = sorted(root.rglob("*.parquet"))
    if not files:
        raise NotFoundError("no .parquet files in folder", where=Location(str(root)))
    named = [
        f
        for f in files
        if f.stem == split or f.stem.startswith(f"{split}-") or f.parent.name == split
    ]
    return named or files


def _from_parquet(files: Sequence[Path], origin: Path, base: Path) -> RowSource:
    import datasets

    try:
        ds = datasets.load_dataset("parquet", data_files=[str(f) for f in files], split="train")
    except Exception as exc:  # noqa: BLE001 - corrupt files, mismatched schemas
        raise ValidationError(
            f"could not read Parquet ({type(exc).__name__}: {str(exc)[:300]})",
            where=Location(str(origin)),
        ) from None
    return ArrowRows(ds, f"parquet:{origin}", base)


def read_jsonl(path: Path, base_dir: Path) -> JsonlRows:
    """Read a JSONL file; a bad line is an error naming its line number."""
    rows: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValidationError(
                    f"not valid JSON: {exc.msg}", where=Location(str(path), lineno)
                ) from None
            if not isinstance(obj, dict):
                raise ValidationError(
                    "each line must be a JSON object", where=Location(str(path), lineno)
                )
            rows.append(obj)
    return JsonlRows(rows, f"jsonl:{path}", base_dir)

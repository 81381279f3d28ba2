"""What a report is made of while it is written: files, figures and the links to them.

`ReportWriter` writes files atomically and remembers them (and the warnings of figures that
could not be drawn); `Figures` is what a run kind's `report_figures` draws with; `Assets`
carries the links, relative to the run's summary.md, into its Markdown sections.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cliffscope.store.atomic import atomic_write_json, atomic_write_text


@dataclass
class ExportResult:
    out_dir: Path
    files: list[Path] = field(default_factory=list)
    markdown: Path | None = None  # the main file: summary.md (one run) or compare.md
    warnings: list[str] = field(default_factory=list)


@dataclass
class Assets:
    """What the exporter made for one run, as links relative to its summary.md."""

    figures: dict[str, str] = field(default_factory=dict)  # name (e.g. "maps:<id>") -> link
    overlays: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # id: (band, png)
    textplots: dict[str, str] = field(default_factory=dict)  # name -> plain-text plot
    data: list[str] = field(default_factory=list)


def safe_file_part(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")[:80] or "sample"


def csv_text(rows: list[dict[str, Any]], columns: Sequence[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(
        buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n"
    )
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row.get(k) for k in columns})
    return buf.getvalue()


class ReportWriter:
    """Collects written files and keeps paths relative to where the Markdown lives."""

    def __init__(self, result: ExportResult) -> None:
        self.result = result

    def text(self, path: Path, text: str) -> Path:
        atomic_write_text(path, text)
        self.result.files.append(path)
        return path

    def json(self, path: Path, obj: Any) -> Path:
        atomic_write_json(path, obj)
        self.result.files.append(path)
        return path

    def figure(self, make: Any, path: Path, *args: Any, **kwargs: Any) -> Path | None:
        """Draw one figure; a broken input (corrupt map, odd values) costs that figure only."""
        try:
            make(*args, path=path, **kwargs)
        except (ValueError, TypeError, KeyError, OSError) as exc:
            self.result.warnings.append(f"{path.name}: {type(exc).__name__}: {exc}")
            return None
        self.result.files.append(path)
        return path


@dataclass
class Figures:
    """A run's figures/ folder as a kind draws into it (see `RunKind.report_figures`)."""

    writer: ReportWriter
    folder: Path  # <report>/figures
    layers: list[int] | None = None  # the layers asked for with `export --layers`

    def draw(self, make: Callable[..., Any], name: str, *args: Any, **kwargs: Any) -> str | None:
        """`make(*args, path=figures/name, **kwargs)`; the link, or None if it failed."""
        made = self.writer.figure(make, self.folder / name, *args, **kwargs)
        return f"figures/{name}" if made is not None else None

    def warn(self, text: str) -> None:
        self.writer.result.warnings.append(text)

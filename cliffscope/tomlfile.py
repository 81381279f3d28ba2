"""Reading TOML files so that every complaint can name the file, the line and the key.

`tomllib` parses; this module adds what it lacks: the line a key sits on, and errors in the
`CliffscopeError` shape. The locator is a small scanner over table headers and `key =` lines,
which is enough for the flat, hand-written files cliffscope reads (profiles, tasks, run.toml).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from cliffscope.errors import Location, ValidationError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_.-]+)\s*=""")
_LINE_COL = re.compile(r"line (\d+)")


def _parts(dotted: str) -> list[str]:
    return [p.strip().strip("\"'") for p in dotted.split(".")]


def find_key_line(text: str, path: tuple[str | int, ...]) -> int | None:
    """1-based line of the key at `path` (table names then key), or of its nearest parent."""
    names = [p for p in path if isinstance(p, str)]
    if not names:
        return None
    table: list[str] = []
    best: int | None = None
    for lineno, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header and not line.lstrip().startswith("#"):
            table = _parts(header.group(1))
            if table == names or best is None and names[: len(table)] == table and table:
                best = lineno
            continue
        key = _KEY.match(line)
        if key:
            full = table + _parts(key.group(1))
            if full == names:
                return lineno
            if names[: len(full)] == full and best is None:
                best = lineno
    return best


def parse_toml(path: Path, text: str | None = None) -> dict[str, Any]:
    """Parse a TOML file; syntax errors become a located ValidationError."""
    path = Path(path)
    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ValidationError("file not found", where=Location(str(path))) from None
        except UnicodeDecodeError as exc:
            raise ValidationError(
                "file is not valid UTF-8 text", where=Location(str(path)), details=[str(exc)]
            ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = _LINE_COL.search(str(exc))
        line = getattr(exc, "lineno", None) or (int(match.group(1)) if match else None)
        raise ValidationError(
            f"not valid TOML: {getattr(exc, 'msg', str(exc))}",
            where=Location(str(path), line),
            hint="check quoting and '=' on that line (strings need quotes)",
        ) from None


def pydantic_errors(
    exc: Any, path: Path, text: str, known_keys: list[str] | None = None
) -> ValidationError:
    """Turn a pydantic ValidationError into one located error listing every problem."""
    import difflib

    details: list[str] = []
    first: Location | None = None
    for err in exc.errors():
        loc = tuple(err.get("loc", ()))
        key = ".".join(str(p) for p in loc) or "(file)"
        line = find_key_line(text, loc)
        where = Location(str(path), line, key)
        first = first or where
        kind = err.get("type", "")
        if kind == "extra_forbidden":
            msg = "unknown key"
            close = difflib.get_close_matches(str(loc[-1]), known_keys or [], n=1)
            if close:
                msg += f" (did you mean '{close[0]}'?)"
        elif kind == "missing":
            msg = "required key is missing"
        else:
            msg = err.get("msg", "invalid value")
            if "input" in err and kind != "missing":
                msg += f" (got {err['input']!r})"
        details.append(f"{path.name}:{line or '?'}: {key}: {msg}")
    if len(details) == 1:
        return ValidationError(details[0].split(": ", 2)[2], where=first)
    return ValidationError(
        f"{len(details)} problems in {path.name}",
        where=Location(str(path)),
        details=details,
        hint="fix the keys listed above; see the template with `cliffscope profiles new`",
    )

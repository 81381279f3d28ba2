"""Validation of names and paths that come from users.

Run ids, profile names and task names end up as path components. They must never climb out of
the directory they belong to, so they are checked here, once, for every entry point.
"""

from __future__ import annotations

import re
from pathlib import Path

from cliffscope.errors import ValidationError

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")


def check_name(name: str, what: str = "name") -> str:
    """Return `name` if it is a safe single path component, else raise."""
    if not isinstance(name, str) or not _SAFE_NAME.fullmatch(name) or ".." in name:
        raise ValidationError(
            f"invalid {what}: {name!r}",
            hint="use letters, digits, '.', '_', '+' or '-' (no '/', no '..', "
            "not starting with '.'), at most 128 characters",
        )
    return name


def safe_child(root: Path, name: str, what: str = "name") -> Path:
    """`root / name`, guaranteed to stay inside `root`."""
    check_name(name, what)
    root = Path(root).resolve()
    child = (root / name).resolve()
    if child.parent != root:
        raise ValidationError(f"{what} {name!r} escapes {root}")
    return child

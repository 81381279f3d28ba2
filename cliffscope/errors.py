"""One error type for everything a user can get wrong.

Every failure a person can fix (a bad profile, a missing dataset, a locked run) is raised as a
`CliffscopeError` that says *what* was wrong, *where* (file, line, key) and *what to do*. The CLI
and the dashboard render it as one short screen; nothing else reaches the user as a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Location:
    """Where a problem sits: a file, optionally a line and a key inside it."""

    path: str | None = None
    line: int | None = None
    key: str | None = None

    def __str__(self) -> str:
        parts = []
        if self.path:
            parts.append(str(self.path) + (f":{self.line}" if self.line else ""))
        elif self.line:
            parts.append(f"line {self.line}")
        if self.key:
            parts.append(f"key '{self.key}'")
        return ", ".join(parts)


@dataclass
class CliffscopeError(Exception):
    """A problem the user can act on."""

    what: str
    where: Location | None = None
    hint: str | None = None
    details: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.what)

    def __str__(self) -> str:
        return self.render()

    def render(self) -> str:
        lines = [f"error: {self.what}"]
        if self.where and str(self.where):
            lines.append(f"  where: {self.where}")
        lines.extend(f"  - {d}" for d in self.details)
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)


class ValidationError(CliffscopeError):
    """A file or a value does not follow its schema."""


class RunLockedError(CliffscopeError):
    """Another live worker owns this run."""


class NotFoundError(CliffscopeError):
    """A named profile, task, run or file does not exist."""

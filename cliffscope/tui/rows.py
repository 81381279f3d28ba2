"""`RunRow`: the immutable summary of one run that the runs table, palette and compare use.

Rows are built in the poller thread and handed to the UI whole; being frozen, they can be
shared across threads and compared to find which table cells changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class RunRow:
    id: str
    kind: str
    profile: str
    task: str
    status: str
    done: int
    total: int
    headline: str
    created: datetime | None
    path: str
    model: str = ""
    trust_remote_code: bool = False
    error: str = ""
    hint: str = ""
    problem: str = ""
    eta_s: float | None = None
    score: float | None = None  # task score (analysis) or untruncated baseline (sweep)
    cliff: int | None = None
    verdict: str = ""

    @property
    def short_result(self) -> str:
        """`0.900 cliff 3` for narrow tables; the metric name is in the detail line."""
        parts = []
        if self.score is not None:
            parts.append(f"{self.score:.3f}")
        if self.cliff is not None:
            parts.append(f"cliff {self.cliff}")
        elif self.verdict:
            parts.append(self.verdict)
        return " ".join(parts)

    @property
    def live(self) -> bool:
        return self.status in {"running", "queued"}

    def matches(self, text: str) -> bool:
        """Filter on everything a person might type: id, kind, profile, task, status."""
        text = text.lower().strip()
        if not text:
            return True
        hay = " ".join((self.id, self.kind, self.profile, self.task, self.status, self.model))
        return all(part in hay.lower() for part in text.split())


SORT_KEYS = ("age", "status", "kind", "profile", "task", "progress")


def sort_rows(rows: list[RunRow], key: str, reverse: bool = False) -> list[RunRow]:
    """Newest first by default; other keys keep newest-first inside equal values."""
    by_age = sorted(rows, key=lambda r: r.id, reverse=True)
    if key == "age":
        return by_age[::-1] if reverse else by_age
    if key == "progress":
        return sorted(by_age, key=lambda r: r.done / r.total if r.total else 0.0, reverse=reverse)
    return sorted(by_age, key=lambda r: str(getattr(r, key)), reverse=reverse)

"""Progress of a run from its events, summed over data-parallel ranks.

Each rank reports `done`/`total` for its own share; the run's progress is the sum of every
rank's latest report since the current worker session started (a `status: running` event
starts a session, so a resume with fewer processes forgets the old ranks).
"""

from __future__ import annotations

from typing import Any


class RankProgress:
    def __init__(self) -> None:
        self.per_rank: dict[int, tuple[int, int]] = {}

    def feed(self, event: dict[str, Any]) -> bool:
        """Take one event; True if it changed the progress."""
        kind = event.get("type")
        if kind == "status" and event.get("status") == "running":
            self.per_rank.clear()
            return True
        if kind != "progress":
            return False
        try:
            rank = int(event.get("rank", 0) or 0)
            done = int(event.get("done", 0) or 0)
            total = int(event.get("total", 0) or 0)
        except (TypeError, ValueError, OverflowError):
            return False
        self.per_rank[rank] = (done, total)
        return True

    @property
    def done(self) -> int:
        return sum(d for d, _ in self.per_rank.values())

    @property
    def total(self) -> int:
        return sum(t for _, t in self.per_rank.values())

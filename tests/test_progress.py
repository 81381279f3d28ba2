"""Progress is summed over data-parallel ranks and reset by a new worker session."""

from __future__ import annotations

from pathlib import Path

from cliffscope.store import RunStore
from cliffscope.store.progress import RankProgress


def test_ranks_add_up_and_resume_resets() -> None:
    tracker = RankProgress()
    tracker.feed({"type": "status", "status": "running"})
    tracker.feed({"type": "progress", "rank": 0, "done": 2, "total": 3})
    tracker.feed({"type": "progress", "rank": 1, "done": 1, "total": 3})
    tracker.feed({"type": "progress", "rank": 0, "done": 3, "total": 3})
    assert (tracker.done, tracker.total) == (4, 6)
    tracker.feed({"type": "status", "status": "running"})  # resumed with one process
    tracker.feed({"type": "progress", "done": 5, "total": 6})
    assert (tracker.done, tracker.total) == (5, 6)
    assert not tracker.feed({"type": "progress", "done": "x"})


def test_run_dir_progress_combines_ranks(tmp_path: Path) -> None:
    run = RunStore(tmp_path).create(
        "sweep", {"name": "p"}, {"name": "t"}, {}, {"ids": list("abcdef"), "hash": "h"}
    )
    assert run.progress() == (0, 6)
    run.set_status("running")
    run.append_event("progress", rank=0, done=3, total=3)
    run.append_event("progress", rank=1, done=2, total=3)
    assert run.progress() == (5, 6)

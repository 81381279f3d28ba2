"""Incremental reads of the run store, for the dashboard's background thread.

Every poll stats a few files per run and reads only what was appended (`JsonlTail`) or
rewritten (`result.json`, `run.toml`, by mtime), so a store of hundreds of runs and a run of
50,000 samples cost the same per poll as a small one. This module holds read cursors only;
it never touches widgets. The app's thread worker calls `scan()` and `details()` and posts
what they return as messages.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cliffscope.store import RunDir, RunStore
from cliffscope.store.jsonl import JsonlTail
from cliffscope.store.progress import RankProgress
from cliffscope.store.run_dir import EVENTS, RESULT_JSON, RUN_TOML
from cliffscope.tui.messages import RunDetail
from cliffscope.tui.rows import RunRow
from cliffscope.tui.tails import ChunkedTail
from cliffscope.vocab import parse_time

RECENT_EVENTS = 500


def _mtime(path: Path) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1


@dataclass
class _Tracked:
    """Read cursors and the last row of one run directory."""

    run: RunDir
    events: JsonlTail
    spec_mtime: int = -2
    result_mtime: int = -2
    headline: str = ""
    score: float | None = None
    cliff: int | None = None
    verdict: str = ""
    done: int = 0
    total: int = 0
    rate_origin: tuple[float, int] | None = None
    eta_s: float | None = None
    recent: deque = field(default_factory=lambda: deque(maxlen=RECENT_EVENTS))
    new_events: list[dict[str, Any]] = field(default_factory=list)
    row: RunRow | None = None
    ranks: RankProgress = field(default_factory=RankProgress)

    def _read_events(self) -> None:
        self.new_events = self.events.read_new()
        for event in self.new_events:
            self.recent.append(event)
            kind = event.get("type")
            if kind == "status" and event.get("status") == "running":
                self.rate_origin = None  # a new worker session: measure its own speed
                self.ranks.feed(event)
            elif kind == "progress" and self.ranks.feed(event):
                self._progress(event)

    def _progress(self, event: dict[str, Any]) -> None:
        try:
            done, total = self.ranks.done, self.ranks.total  # summed over data-parallel ranks
            t = float(event.get("t", 0.0))
        except (TypeError, ValueError, OverflowError):
            return
        self.done, self.total = done, total or self.total
        if self.rate_origin is None or done < self.rate_origin[1] or t < self.rate_origin[0]:
            self.rate_origin = (t, done)
            self.eta_s = None
            return
        t0, done0 = self.rate_origin
        if done > done0 and t > t0:
            self.eta_s = (self.total - done) * (t - t0) / (done - done0)

    def _summarise(self, result: dict[str, Any], kind: Any) -> None:
        """Headline, score and cliff as the run's kind reads its result."""
        from cliffscope.kinds.base import RunKind
        from cliffscope.kinds.registry import headline, kind_of

        reader = kind_of(result.get("kind") or kind) or RunKind()
        self.headline = headline(result, kind)
        value = (reader.score(result) or {}).get("value") if result else None
        self.score = value if isinstance(value, float) else None
        cliff = (reader.cliff(result) if result else None) or {}
        layer = cliff.get("layer")
        self.cliff = layer if isinstance(layer, int) and not isinstance(layer, bool) else None
        self.verdict = str(cliff.get("verdict") or "")

    def refresh(self) -> bool:
        """Re-read what changed on disk; True if the row differs from the last one."""
        run = self.run
        self._read_events()
        spec_mtime = _mtime(run.path / RUN_TOML)
        spec = run.spec
        if spec_mtime != self.spec_mtime:
            self.spec_mtime = spec_mtime
            if not self.total:
                self.total = len(spec.get("subset", {}).get("ids", []))
        result_mtime = _mtime(run.path / RESULT_JSON)
        if result_mtime != self.result_mtime:
            self.result_mtime = result_mtime
            result = run.result() if result_mtime >= 0 else None
            self._summarise(result or {}, spec.get("kind"))
        status = run.status.value
        profile, task = spec.get("profile", {}), spec.get("task", {})
        row = RunRow(
            id=run.id,
            kind=str(spec.get("kind", "?")),
            profile=str(profile.get("name", "")),
            task=str(task.get("name", "")),
            status=status,
            done=self.done,
            total=self.total,
            headline=self.headline,
            created=parse_time(spec.get("created")),
            path=str(run.path),
            model=str(profile.get("model", "")),
            trust_remote_code=bool(profile.get("trust_remote_code", False)),
            error=str(spec.get("error", "") or ""),
            hint=str(spec.get("hint", "") or ""),
            problem=run.problem or "",
            eta_s=self.eta_s if status == "running" else None,
            score=self.score,
            cliff=self.cliff,
            verdict=self.verdict,
        )
        changed = row != self.row
        self.row = row
        return changed


@dataclass
class _Watch:
    """A run the UI is showing in detail: its sample cursors and what it was last sent."""

    want_samples: bool = True
    samples: dict[Path, ChunkedTail] = field(default_factory=dict)
    result_mtime: int = -2
    fresh: bool = True


class RunPoller:
    """Owned by one background thread; `watch`/`unwatch`/`poke` are safe from the UI thread."""

    def __init__(self, store: RunStore) -> None:
        self.store = store
        self._tracked: dict[str, _Tracked] = {}
        self._watches: dict[str, _Watch] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self.rows: tuple[RunRow, ...] = ()
        self.behind = False

    # ---- called from the UI thread ----------------------------------------------------
    def watch(self, run_id: str, samples: bool = True) -> None:
        """Send details of `run_id`; its samples only with `samples` (or after want_samples)."""
        with self._lock:
            self._watches[run_id] = _Watch(want_samples=samples)
        self.poke()

    def want_samples(self, run_id: str) -> None:
        with self._lock:
            watch = self._watches.get(run_id)
            if watch is not None and not watch.want_samples:
                watch.want_samples = True
        self.poke()

    def unwatch(self, run_id: str) -> None:
        with self._lock:
            self._watches.pop(run_id, None)

    def poke(self) -> None:
        """Poll now instead of at the next tick (after a launch, a cancel, a new view)."""
        self._wake.set()

    def wait(self, seconds: float) -> None:
        self._wake.wait(seconds)
        self._wake.clear()

    # ---- called from the poller thread --------------------------------------------------
    def _run_dirs(self) -> list[Path]:
        root = self.store.root
        try:
            entries = list(os.scandir(root))
        except OSError:
            return []
        return [
            Path(e.path)
            for e in entries
            if e.is_dir() and not e.name.startswith(".") and os.path.exists(Path(e.path) / RUN_TOML)
        ]

    def scan(self, limit: int | None = None) -> tuple[tuple[RunRow, ...], bool]:
        """All runs, newest first; the flag says whether anything changed since last time.

        With `limit`, only the newest `limit` runs are read (the first screenful, shown while
        the rest of a large store is read by the next call)."""
        paths = {p.name: p for p in self._run_dirs()}
        changed = False
        for gone in set(self._tracked) - set(paths):
            del self._tracked[gone]
            changed = True
        names = sorted(paths, reverse=True)
        for name in names if limit is None else names[:limit]:
            path = paths[name]
            tracked = self._tracked.get(name)
            if tracked is None:
                tracked = self._tracked[name] = _Tracked(RunDir(path), JsonlTail(path / EVENTS))
            changed |= tracked.refresh()
        if changed:
            rows = [t.row for t in self._tracked.values() if t.row is not None]
            self.rows = tuple(sorted(rows, key=lambda r: r.id, reverse=True))
        return self.rows, changed

    def details(self) -> list[RunDetail]:
        """One message per watched run with anything new (call after `scan`); `behind` then
        says whether a samples file has more to read (poll again soon)."""
        self.behind = False
        with self._lock:
            watches = list(self._watches.items())
        out = []
        for run_id, watch in watches:
            tracked = self._tracked.get(run_id)
            if tracked is None:
                continue
            message = self._detail(run_id, tracked, watch)
            if message is not None:
                out.append(message)
        return out

    def _detail(self, run_id: str, tracked: _Tracked, watch: _Watch) -> RunDetail | None:
        run = tracked.run
        reset, watch.fresh = watch.fresh, False
        events = list(tracked.recent) if reset else tracked.new_events
        samples: list[dict[str, Any]] = []
        for file in run.sample_files() if watch.want_samples else []:
            tail = watch.samples.setdefault(file, ChunkedTail(file))
            samples.extend(tail.read_new())
            self.behind = self.behind or tail.behind
        result, result_changed = None, False
        mtime = _mtime(run.path / RESULT_JSON)
        if mtime != watch.result_mtime:
            watch.result_mtime = mtime
            result, result_changed = run.result(), True
        if not (reset or events or samples or result_changed):
            return None
        return RunDetail(
            run_id,
            tracked.row,
            result,
            result_changed,
            samples,
            events,
            reset,
        )

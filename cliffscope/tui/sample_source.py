"""Where the Samples tab finds a sample's picture, question and references.

First the run's own files: an analysis writes `images/<id>.png` for its map samples (the
sample line names the file). Otherwise the task is rebuilt from run.toml's snapshot
(`tasks.registry.task_from_snapshot`, the same call the worker makes; tasks need PIL and,
for datasets, `datasets`, never torch) and the sample redrawn or read from its data. A
procedural sample takes milliseconds; a dataset task loads its index once per run, which is
why this only ever runs in a thread worker. The task object is not thread-safe and exclusive
thread workers may overlap, hence a lock around it; the cache has its own lock, held only for
a lookup, so the UI thread can ask `cached()` without waiting for a load.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cliffscope.errors import CliffscopeError
from cliffscope.report.mapfile import inside

CACHE = 48  # samples kept (PIL images of a few hundred kB each)


@dataclass(frozen=True)
class SampleView:
    """What is known of one sample besides its answers; `note` says where it came from or
    why there is no image."""

    image: Any | None
    question: str | None = None
    references: list[str] | None = None
    note: str = ""


class SampleSource:
    """One run's samples, looked up by id (call `get` from a thread only)."""

    def __init__(self, run_path: Path, task_snapshot: dict[str, Any] | None) -> None:
        self.run_path = run_path
        self.task_snapshot = task_snapshot
        self._task: Any = None
        self._task_error: str | None = None
        self._task_lock = threading.Lock()
        self._cache_lock = threading.Lock()
        self._cache: OrderedDict[str, SampleView] = OrderedDict()

    def cached(self, sample_id: str) -> SampleView | None:
        """The view if it was loaded already (safe and quick from the UI thread)."""
        with self._cache_lock:
            view = self._cache.get(sample_id)
            if view is not None:
                self._cache.move_to_end(sample_id)
            return view

    def get(self, sample_id: str, image_file: Any = None) -> SampleView:
        """The sample's view; `image_file` is the image path a sample line names, if any."""
        view = self.cached(sample_id)
        if view is not None:
            return view
        with self._task_lock:
            view = self._from_file(image_file) or self._from_task(sample_id)
        with self._cache_lock:
            self._cache[sample_id] = view
            while len(self._cache) > CACHE:
                self._cache.popitem(last=False)
        return view

    def _from_file(self, image_file: Any) -> SampleView | None:
        from PIL import Image

        path = inside(self.run_path, image_file)
        if path is None or not path.is_file():
            return None
        try:
            with Image.open(path) as img:
                return SampleView(img.convert("RGB"), note=f"image from {image_file}")
        except OSError:
            return None

    def _from_task(self, sample_id: str) -> SampleView:
        task = self._rebuilt_task()
        if task is None:
            return SampleView(None, note=f"no image: {self._task_error}")
        try:
            sample = task.get(sample_id)
        except CliffscopeError as exc:
            return SampleView(None, note=f"no image: {exc.what}")
        except (OSError, ValueError) as exc:
            return SampleView(None, note=f"no image: {type(exc).__name__}: {exc}")
        name = getattr(task, "name", "the task")
        return SampleView(
            sample.image.convert("RGB"),
            sample.question,
            list(sample.references),
            note=f"image redrawn from task {name}",
        )

    def _rebuilt_task(self) -> Any:
        if self._task is not None or self._task_error is not None:
            return self._task
        if not isinstance(self.task_snapshot, dict):
            self._task_error = "run.toml has no [task] table"
            return None
        from cliffscope.tasks.registry import task_from_snapshot

        try:
            task = task_from_snapshot(self.task_snapshot)
            task.ids()  # a dataset task reads its index here, once
        except CliffscopeError as exc:
            self._task_error = exc.what
        except (OSError, ValueError, ImportError) as exc:
            self._task_error = f"{type(exc).__name__}: {exc}"
        else:
            self._task = task
        return self._task

"""One run directory: its spec, status, samples, events and result.

Readers (CLI, dashboard) never trust that files are complete: a torn last samples line is
ignored, a corrupt `result.json` reads as absent with a problem noted, and a run.toml written by
a newer cliffscope is reported as such rather than misread.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any

from cliffscope.errors import Location, ValidationError
from cliffscope.store import lock as run_lock
from cliffscope.store.atomic import atomic_write_json, atomic_write_text
from cliffscope.store.jsonl import append_jsonl, iter_jsonl

SCHEMA_VERSION = 1
RUN_TOML = "run.toml"
RESULT_JSON = "result.json"
EVENTS = "events.jsonl"
CANCEL_FLAG = "cancel-requested"


class RunStatus(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"  # derived: running on disk, no live worker
    UNREADABLE = "unreadable"  # derived: run.toml missing, corrupt or too new

    @property
    def finished(self) -> bool:
        return self in {RunStatus.DONE, RunStatus.FAILED, RunStatus.CANCELLED}


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def _drop_none(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _drop_none(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, (list, tuple)):
        return [_drop_none(v) for v in obj if v is not None]
    return obj


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunDir:
    """A view of `runs/<id>/`. Cheap to create; reads lazily and caches by mtime."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._spec_cache: tuple[float, dict[str, Any]] | None = None
        self.problem: str | None = None

    @property
    def id(self) -> str:
        return self.path.name

    # ---- spec (run.toml) -------------------------------------------------------------
    def read_spec(self) -> dict[str, Any]:
        """run.toml as a dict; raises ValidationError when missing, corrupt or too new."""
        from cliffscope.tomlfile import parse_toml

        file = self.path / RUN_TOML
        try:
            mtime = file.stat().st_mtime_ns
        except FileNotFoundError:
            raise ValidationError("run.toml is missing", where=Location(str(file))) from None
        if self._spec_cache and self._spec_cache[0] == mtime:
            return self._spec_cache[1]
        spec = parse_toml(file)
        version = spec.get("schema_version", 1)
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise ValidationError(
                f"run.toml has schema_version {version!r}; this cliffscope reads up to "
                f"{SCHEMA_VERSION}",
                where=Location(str(file), key="schema_version"),
                hint="upgrade cliffscope to read this run",
            )
        tables = ("profile", "task", "params", "subset")  # readers rely on these types
        bad = [k for k in tables if k in spec and not isinstance(spec[k], dict)]
        if bad or not isinstance(spec.get("subset", {}).get("ids", []), list):
            key = bad[0] if bad else "subset.ids"
            where = Location(str(file), key=key)
            raise ValidationError(f"run.toml: {key} has the wrong type", where=where)
        self._spec_cache = (mtime, spec)
        return spec

    @property
    def spec(self) -> dict[str, Any]:
        try:
            spec = self.read_spec()
            self.problem = None
            return spec
        except ValidationError as exc:
            self.problem = exc.render()
            return {}

    def write_spec(self, spec: dict[str, Any]) -> None:
        from cliffscope.tomlwrite import dumps

        spec = dict(spec)
        spec.setdefault("schema_version", SCHEMA_VERSION)
        atomic_write_text(self.path / RUN_TOML, dumps(_drop_none(spec)))
        self._spec_cache = None

    def update_spec(self, **fields: Any) -> dict[str, Any]:
        """Set top-level fields (None removes a field) and rewrite run.toml atomically."""
        spec = dict(self.read_spec())
        for key, value in fields.items():
            if value is None:
                spec.pop(key, None)
            else:
                spec[key] = value
        self.write_spec(spec)
        return spec

    @property
    def kind(self) -> str:
        return str(self.spec.get("kind", "?"))

    # ---- status --------------------------------------------------------------------------
    def is_locked(self) -> bool:
        return run_lock.is_locked(self.path)

    @property
    def status(self) -> RunStatus:
        spec = self.spec
        if not spec:
            return RunStatus.UNREADABLE
        try:
            status = RunStatus(spec.get("status", "queued"))
        except ValueError:
            self.problem = f"unknown status {spec.get('status')!r} in run.toml"
            return RunStatus.UNREADABLE
        if status is RunStatus.RUNNING and not self.is_locked():
            return RunStatus.INTERRUPTED
        if status is RunStatus.QUEUED and not self.is_locked():
            pid = spec.get("worker_pid")
            if isinstance(pid, int) and not _pid_alive(pid) and spec.get("started"):
                return RunStatus.INTERRUPTED
        return status

    def set_status(self, status: RunStatus | str, **fields: Any) -> None:
        status = RunStatus(status)
        extra: dict[str, Any] = {"status": status.value}
        if status is RunStatus.RUNNING:
            extra.update(started=utcnow(), finished=None, error=None, worker_pid=os.getpid())
        elif status.finished:
            extra["finished"] = utcnow()
        extra.update(fields)
        self.update_spec(**extra)
        self.append_event("status", status=status.value)

    # ---- cancellation -----------------------------------------------------------------------
    def request_cancel(self) -> bool:
        """Ask the worker to stop after the current sample; True if a live worker was signalled."""
        atomic_write_text(self.path / CANCEL_FLAG, f"{time.time()}\n")
        pid = run_lock.holder_pid(self.path)
        if self.is_locked() and pid and _pid_alive(pid):
            try:
                os.kill(pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                return False
            return True
        return False

    def cancel_requested(self) -> bool:
        return (self.path / CANCEL_FLAG).exists()

    def clear_cancel(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.path / CANCEL_FLAG).unlink()

    # ---- samples, events, result ----------------------------------------------------------
    def sample_files(self) -> list[Path]:
        return sorted(self.path.glob("samples*.jsonl"))

    def samples(self) -> list[dict[str, Any]]:
        """All sample records of every shard; on a repeated key the last one wins."""
        merged: dict[str, dict[str, Any]] = {}
        for file in self.sample_files():
            for record in iter_jsonl(file):
                key = record.get("key", record.get("id"))
                if key is not None:
                    merged[str(key)] = record
        return list(merged.values())

    def done_keys(self) -> set[str]:
        return {str(r.get("key", r.get("id"))) for r in self.samples()}

    def append_event(self, type_: str, **fields: Any) -> None:
        append_jsonl(self.path / EVENTS, {"t": round(time.time(), 3), "type": type_, **fields})

    def events(self) -> list[dict[str, Any]]:
        return list(iter_jsonl(self.path / EVENTS))

    def result(self) -> dict[str, Any] | None:
        file = self.path / RESULT_JSON
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (ValueError, OSError) as exc:
            self.problem = f"result.json unreadable: {exc}"
            return None
        return data if isinstance(data, dict) else None

    def write_result(self, result: dict[str, Any]) -> None:
        atomic_write_json(self.path / RESULT_JSON, result)

    def progress(self) -> tuple[int, int]:
        """(done, total) summed over ranks, falling back to the subset size."""
        from cliffscope.store.progress import RankProgress

        subset = self.spec.get("subset", {})
        total = len(subset.get("ids", [])) if isinstance(subset, dict) else 0
        tracker = RankProgress()
        for event in self.events():
            tracker.feed(event)
        if tracker.per_rank:
            return tracker.done, tracker.total or total
        return 0, total

    def __repr__(self) -> str:
        return f"RunDir({self.path})"

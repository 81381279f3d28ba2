"""The collection of run directories under one root."""

from __future__ import annotations

import os
import shutil
import socket
import sys
from pathlib import Path
from typing import Any

from cliffscope import __version__
from cliffscope.errors import NotFoundError, RunLockedError, ValidationError
from cliffscope.naming import safe_child
from cliffscope.store.run_dir import SCHEMA_VERSION, RunDir, RunStatus, utcnow
from cliffscope.store.run_id import new_run_id


def library_versions() -> dict[str, str]:
    """Versions recorded in run.toml; read from metadata so torch is not imported."""
    from importlib import metadata

    versions = {"cliffscope": __version__, "python": sys.version.split()[0]}
    for dist in ("torch", "transformers", "accelerate"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    return versions


class RunStore:
    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path_of(self, run_id: str) -> Path:
        return safe_child(self.root, run_id, "run id")

    def get(self, run_id: str) -> RunDir:
        """A run by exact id or by a unique prefix/suffix (handy on the command line)."""
        path = self.path_of(run_id)
        if path.is_dir():
            return RunDir(path)
        matches = [r for r in self.list() if r.id.startswith(run_id) or r.id.endswith(run_id)]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise NotFoundError(
                f"no run {run_id!r} in {self.root}", hint="see `cliffscope runs list`"
            )
        raise ValidationError(
            f"{run_id!r} matches {len(matches)} runs",
            hint="give more of the run id",
            details=[m.id for m in matches[:8]],
        )

    def list(
        self,
        kind: str | None = None,
        status: str | None = None,
        text: str | None = None,
    ) -> list[RunDir]:
        """Newest first. Directories without run.toml are skipped (not runs)."""
        runs = []
        for path in self.root.iterdir() if self.root.exists() else []:
            if not path.is_dir() or path.name.startswith(".") or not (path / "run.toml").exists():
                continue
            run = RunDir(path)
            if kind and run.kind != kind:
                continue
            if status and run.status.value != status:
                continue
            if text and text.lower() not in run.id.lower():
                continue
            runs.append(run)
        return sorted(runs, key=lambda r: r.id, reverse=True)

    def create(
        self,
        kind: str,
        profile: dict[str, Any],
        task: dict[str, Any],
        params: dict[str, Any],
        subset: dict[str, Any],
        run_id: str | None = None,
    ) -> RunDir:
        from cliffscope.kinds.registry import get_kind

        get_kind(kind)  # unknown kinds are refused before anything is written
        run_id = run_id or new_run_id(
            kind, str(profile.get("name", "model")), str(task.get("name", "task"))
        )
        path = self.path_of(run_id)
        path.mkdir(parents=True, exist_ok=False)
        run = RunDir(path)
        run.write_spec(
            {
                "schema_version": SCHEMA_VERSION,
                "id": run_id,
                "kind": kind,
                "status": RunStatus.QUEUED.value,
                "created": utcnow(),
                "host": socket.gethostname(),
                "profile": profile,
                "task": task,
                "params": params,
                "subset": subset,
                "versions": library_versions(),
            }
        )
        run.append_event("status", status="queued")
        return run

    def remove(self, run_id: str, force: bool = False) -> Path:
        run = self.get(run_id)
        if run.is_locked() and not force:
            raise RunLockedError(
                f"run {run.id} has a live worker", hint="cancel it first (`cliffscope runs cancel`)"
            )
        shutil.rmtree(run.path)
        return run.path

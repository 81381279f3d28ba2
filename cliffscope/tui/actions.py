"""What the dashboard does to runs: create + launch, cancel, resume. No Textual here.

These mirror `cliffscope analyze/sweep --detach`, `runs cancel` and `runs resume`, so a run
handled from the dashboard is indistinguishable from one handled from the CLI. They may block
briefly (task loading, process start) and are called from thread workers.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cliffscope import runops
from cliffscope.store import RunDir, RunStore


@dataclass
class LaunchRequest:
    """Everything the Launch form collects; `params` are the kind-specific options."""

    kind: str
    profile: str
    task: str
    limit: int | None
    seed: int
    params: dict[str, Any] = field(default_factory=dict)
    task_overrides: dict[str, Any] = field(default_factory=dict)
    data_path: str | None = None


class LaunchedWorkers:
    """Detached workers started by this dashboard, reaped so they never linger as zombies.

    Quitting the dashboard drops the handles and the workers keep running: they live in their
    own session and write only into their run dirs.
    """

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen] = []

    def add(self, proc: subprocess.Popen) -> None:
        self._procs.append(proc)

    def reap(self) -> None:
        self._procs = [p for p in self._procs if p.poll() is None]

    @property
    def alive(self) -> int:
        self.reap()
        return len(self._procs)


def start_run(
    store: RunStore,
    request: LaunchRequest,
    profiles_dir: str | os.PathLike | None,
    launched: LaunchedWorkers,
) -> RunDir:
    """Create the run directory (validates profile, task, subset) and start its worker."""
    run, proc = runops.start(
        store,
        request.kind,
        request.profile,
        request.task,
        request.params,
        limit=request.limit,
        seed=request.seed,
        data_path=request.data_path,
        task_overrides=request.task_overrides or None,
        profiles_dir=profiles_dir,
    )
    launched.add(proc)
    return run


def cancel_run(run_path: str | Path) -> str:
    """Ask the worker to stop (it keeps finished samples); a run without one is marked now."""
    run = RunDir(run_path)
    if runops.cancel(run):
        return f"{run.id}: cancelled"
    return f"{run.id}: stopping after the current batch"


def resume_run(run_path: str | Path, launched: LaunchedWorkers) -> str:
    """Continue a failed, cancelled or interrupted run from its last finished sample."""
    run = RunDir(run_path)
    launched.add(runops.resume(run))
    return f"{run.id}: resumed"

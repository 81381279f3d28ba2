"""What a user does to a run, the same from the CLI and the dashboard: start, cancel, resume.

`cliffscope <kind command>`, `runs cancel|resume` and the dashboard's launch form and x / u
keys call these, so a run handled from either is indistinguishable. No click, no textual;
launching imports no torch.
"""

from __future__ import annotations

import subprocess
import time
from typing import Any

from cliffscope.errors import RunLockedError, ValidationError
from cliffscope.store import RunDir, RunStatus, RunStore


def start(
    store: RunStore, *args: Any, processes: int = 1, **kwargs: Any
) -> tuple[RunDir, subprocess.Popen]:
    """`run_factory.new_run(store, *args, **kwargs)` (validate, write the run directory), then
    start its detached worker (`processes` data-parallel ranks)."""
    from cliffscope.run_factory import new_run
    from cliffscope.worker.launch import launch

    run = new_run(store, *args, **kwargs)
    return run, launch(run.path, detach=True, processes=processes)


def cancel(run: RunDir) -> bool:
    """Ask the run to stop after the current batch (finished samples are kept).

    A run without a live worker (queued, interrupted) is marked cancelled at once; returns
    True then, False when a worker was asked and stops on its own.
    """
    status = run.status
    if status.finished:
        raise ValidationError(f"run {run.id} is already {status.value}")
    signalled = run.request_cancel()
    if not signalled and status in {RunStatus.QUEUED, RunStatus.INTERRUPTED}:
        run.set_status(RunStatus.CANCELLED)
        return True
    return False


def wait_stopped(run: RunDir, timeout_s: float = 10.0) -> RunStatus:
    """Wait (at most `timeout_s`) for the worker to let go of the run; its status then."""
    deadline = time.time() + timeout_s
    while run.is_locked() and time.time() < deadline:
        time.sleep(0.2)
    return run.status


def resume(run: RunDir, processes: int = 1) -> subprocess.Popen:
    """Continue a failed, cancelled or interrupted run from its last finished sample."""
    from cliffscope.worker.launch import launch

    status = run.status
    if status is RunStatus.DONE:
        raise ValidationError(f"run {run.id} is already done", hint="nothing to resume")
    if status in {RunStatus.RUNNING, RunStatus.QUEUED} and run.is_locked():
        raise RunLockedError(
            f"run {run.id} is locked by a live worker ({status.value})",
            hint="wait for it to finish, or `cliffscope runs cancel` it first",
        )
    return launch(run.path, detach=True, resume=True, processes=processes)

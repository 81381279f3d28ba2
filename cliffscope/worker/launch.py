"""Start workers: detached (outlives the terminal and the SSH session) or attached.

The launcher takes the run's lock first and hands the open descriptor to the child, so "two
resumes of one run" is decided here, atomically, and the loser gets a clear "locked" error.
Launching imports no torch: the dashboard calls this too.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from cliffscope.store import lock as run_lock
from cliffscope.store.run_dir import RunDir, RunStatus

WORKER_LOG = "worker.log"


def worker_command(run_path: Path, processes: int = 1) -> list[str]:
    """The worker's command line; with `processes > 1`, an `accelerate launch` of N ranks.

    Every flag accelerate would otherwise ask about or warn about is given explicitly, and the
    rendezvous port is a free one, so two data-parallel runs on one machine don't collide.
    """
    if processes > 1:
        return [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            "--num_processes",
            str(processes),
            "--num_machines",
            "1",
            "--machine_rank",
            "0",
            "--main_process_port",
            str(_free_port()),
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            # accelerate's torchrun-based launcher, also for CPU ranks: `--cpu` with N > 1 would
            # want mpirun. The ranks pick gloo or nccl themselves (worker.runner._distributed).
            "--multi_gpu",
            "-m",
            "cliffscope.worker",
            str(run_path),
        ]
    return [sys.executable, "-m", "cliffscope.worker", str(run_path)]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def launch(
    run_path: str | Path, detach: bool = True, processes: int = 1, resume: bool = False
) -> subprocess.Popen:
    """Start the worker for `run_path`; raises RunLockedError if one is alive.

    With `resume`, a failed, cancelled or interrupted run is put back to `queued` first (under
    the lock, so a racing second resume cannot interleave).
    """
    run = RunDir(run_path)
    lock = run_lock.acquire(run.path)
    if resume:
        try:
            mark_resumable(run)
        except BaseException:
            lock.release()
            raise
    env = dict(os.environ)
    env[run_lock.LOCK_FD_ENV] = run_lock.inheritable_value(lock)
    env.setdefault("PYTHONUNBUFFERED", "1")
    log = open(run.path / WORKER_LOG, "ab")  # noqa: SIM115 - handed to the child
    try:
        proc = subprocess.Popen(
            worker_command(run.path, processes),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            pass_fds=(lock.fd,),
            start_new_session=detach,
            close_fds=True,
        )
        # The child holds the lock from now on; naming it lets the ranks of a multi-process
        # launch find the holder among their ancestors even after a detached CLI has exited.
        lock.write_pid(proc.pid)
    finally:
        log.close()
        os.close(lock.fd)  # the child holds the lock now
        lock.fd = -1
    return proc


def mark_resumable(run: RunDir) -> None:
    """Before a resume: a failed/cancelled/interrupted run goes back to queued."""
    status = RunStatus(run.read_spec().get("status", "queued"))
    if status in {RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.RUNNING}:
        run.update_spec(status=RunStatus.QUEUED.value, error=None, hint=None)
        run.clear_cancel()

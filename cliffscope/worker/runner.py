"""Run one job in one run directory: lock, status, dispatch, and failures turned into advice.

Whatever happens inside a job, the run ends in a state a reader understands: `done`,
`cancelled`, or `failed` with the error, a hint and the traceback in events.jsonl. Samples
already appended are never touched, so `cliffscope runs resume` continues where it stopped.
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path

from cliffscope.errors import CliffscopeError, RunLockedError
from cliffscope.store import lock as run_lock
from cliffscope.store.run_dir import RunDir, RunStatus
from cliffscope.worker.context import Cancelled, JobContext, rank_from_env


def hint_for(exc: BaseException) -> str:
    """A one-line suggestion for the failures people actually hit on GPU servers."""
    name = type(exc).__name__
    text = str(exc)
    if isinstance(exc, CliffscopeError):
        return exc.hint or ""
    if name == "OutOfMemoryError" or "out of memory" in text.lower():
        return (
            "the GPU ran out of memory: lower batch_size under [profile] in this run's "
            'run.toml (a run keeps its own copy of the profile), or use dtype = "bfloat16" or '
            'device_map = "auto"; then `cliffscope runs resume` continues from the last '
            "finished sample"
        )
    if isinstance(exc, (FileNotFoundError, OSError)) and (
        "does not appear to have" in text or "No such file" in text
    ):
        return "check the profile's `model` path (a local folder with config.json and weights)"
    if "huggingface.co" in text or "offline" in text.lower() or "ConnectionError" in name:
        return (
            "the model hub is unreachable: download the checkpoint elsewhere and point the "
            "profile's `model` at the local folder (or set HF_HUB_OFFLINE=1 with a cache)"
        )
    return "see the traceback in events.jsonl; fix the cause and `cliffscope runs resume` the run"


def job_for(ctx: JobContext):
    """The job of the run's kind (`kinds.registry`), built on its context."""
    from cliffscope.kinds.registry import get_kind, load_target

    kind = get_kind(str(ctx.spec.get("kind")))
    return load_target(kind.job)(ctx)


def _ancestors() -> set[int]:
    """Our parent chain (pids), read from /proc; empty where /proc is missing."""
    pids: set[int] = set()
    pid = os.getppid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
                pid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return pids


def _take_lock(run: RunDir, rank: int, world: int) -> tuple[run_lock.RunLock | None, bool]:
    """(lock, ok). Rank 0 of a launch owns the lock, or runs under a launcher that holds it."""
    lock = run_lock.adopt_inherited(run.path)
    if lock is not None:
        return lock, True
    if rank != 0:
        return None, True
    try:
        return run_lock.acquire(run.path), True
    except RunLockedError as exc:
        holder = run_lock.holder_pid(run.path)
        if world > 1 and holder in _ancestors():
            return None, True  # `cliffscope ... --processes N`: our launcher holds it
        print(exc.render(), file=sys.stderr)
        return None, False


def _distributed(world: int):
    """Initialise torch.distributed for multi-process launches (gloo on CPU, nccl on GPU)."""
    if world <= 1:
        return None
    import torch
    from accelerate import PartialState

    # Without cpu=True accelerate sets up no process group at all when CUDA is missing, and
    # the barrier before `finalize` silently becomes a no-op.
    return PartialState(cpu=not torch.cuda.is_available())


def run_worker(run_path: str | Path) -> int:
    """Execute the run at `run_path`; returns a process exit code (0 done/cancelled, 1 failed).

    Under `accelerate launch`/`torchrun` every rank runs the job on its share of the subset and
    appends to its own samples file; after a barrier, rank 0 rebuilds result.json from all
    shards (`Job.finalize`) and marks the run done.
    """
    run = RunDir(run_path)
    rank, world = rank_from_env()
    lock, ok = _take_lock(run, rank, world)
    if not ok:
        return 3
    ctx = JobContext(run=run, rank=rank, world_size=world)
    ctx.install_signal_handlers()
    try:
        run.read_spec()
        if rank == 0:
            run.clear_cancel()
            run.set_status(RunStatus.RUNNING)
        state = _distributed(world)
        job = job_for(ctx)
        job.run()
        ctx.close()
        if state is not None:
            state.wait_for_everyone()
        if rank == 0:
            if world > 1:
                job.finalize()
            run.set_status(RunStatus.CANCELLED if ctx.should_stop() else RunStatus.DONE)
        return 0
    except Cancelled:
        ctx.close()
        if rank == 0:
            run.set_status(RunStatus.CANCELLED)
        return 0
    except BaseException as exc:  # noqa: BLE001 - record every failure in the run dir
        ctx.close()
        message = exc.what if isinstance(exc, CliffscopeError) else f"{type(exc).__name__}: {exc}"
        hint = hint_for(exc)
        try:
            run.append_event(
                "error", message=message, hint=hint, rank=rank, traceback=traceback.format_exc()
            )
            run.set_status(RunStatus.FAILED, error=message, hint=hint)
        except Exception:  # noqa: BLE001 - the run dir itself may be gone
            pass
        print(f"error: {message}\n  hint: {hint}", file=sys.stderr)
        if isinstance(exc, KeyboardInterrupt):
            return 130
        return 1
    finally:
        if lock is not None:
            lock.release()


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m cliffscope.worker RUN_DIR", file=sys.stderr)
        return 2
    path = Path(argv[0])
    if not (path / "run.toml").exists():
        print(f"error: {path} is not a run directory (no run.toml)", file=sys.stderr)
        return 2
    return run_worker(path)

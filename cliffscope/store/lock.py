"""One live worker per run, enforced with an advisory `flock` on `<run>/lock`.

The lock dies with its process (also on `kill -9`), which is what makes `interrupted` detectable:
a run whose status says `running` but whose lock anyone can take has lost its worker. The CLI
takes the lock *before* starting a detached worker and hands the open descriptor to the child, so
two racing `resume` calls cannot both start one.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from cliffscope.errors import RunLockedError

LOCK_NAME = "lock"
LOCK_FD_ENV = "CLIFFSCOPE_LOCK_FD"


class RunLock:
    def __init__(self, run_path: Path, fd: int) -> None:
        self.run_path = run_path
        self.fd = fd

    def release(self) -> None:
        if self.fd >= 0:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
            finally:
                os.close(self.fd)
                self.fd = -1

    def write_pid(self, pid: int | None = None) -> None:
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"{pid or os.getpid()}\n".encode(), 0)

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def holder_pid(run_path: Path) -> int | None:
    try:
        text = (Path(run_path) / LOCK_NAME).read_text().strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


def acquire(run_path: str | os.PathLike) -> RunLock:
    """Take the run's lock without waiting; raise RunLockedError naming the holder."""
    run_path = Path(run_path)
    fd = os.open(run_path / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        pid = holder_pid(run_path)
        raise RunLockedError(
            f"run {run_path.name} is locked by a live worker" + (f" (pid {pid})" if pid else ""),
            hint="wait for it to finish, or `cliffscope runs cancel` it first",
        ) from None
    lock = RunLock(run_path, fd)
    lock.write_pid()
    return lock


def adopt_inherited(run_path: str | os.PathLike) -> RunLock | None:
    """Use a lock descriptor handed down by the launcher (see module docstring)."""
    value = os.environ.pop(LOCK_FD_ENV, None)
    if not value:
        return None
    fd_text, _, inode_text = value.partition(":")
    fd = int(fd_text)
    try:
        same_file = os.fstat(fd).st_ino == (Path(run_path) / LOCK_NAME).stat().st_ino
    except (OSError, ValueError):
        same_file = False
    if not same_file or str(os.fstat(fd).st_ino) != inode_text:
        return None  # not inherited (e.g. a rank started by a multi-process launcher)
    lock = RunLock(Path(run_path), fd)
    lock.write_pid()
    return lock


def inheritable_value(lock: RunLock) -> str:
    """What a launcher puts in CLIFFSCOPE_LOCK_FD: the fd number and the lock file's inode, so
    a grandchild that sees the variable but not the descriptor cannot mistake another file."""
    return f"{lock.fd}:{os.fstat(lock.fd).st_ino}"


def is_locked(run_path: str | os.PathLike) -> bool:
    """True while some process holds the lock (probe: try to take it and let go at once)."""
    path = Path(run_path) / LOCK_NAME
    if not path.exists():
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops our probe lock if we got it
    return False

"""The run store: run directories are the single source of truth (see docs/architecture.md)."""

from cliffscope.store.run_dir import RunDir, RunStatus
from cliffscope.store.store import RunStore

__all__ = ["RunDir", "RunStatus", "RunStore"]

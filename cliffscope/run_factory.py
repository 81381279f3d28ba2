"""Turn "profile P, task T, these options" into a queued run directory.

Used by `cliffscope analyze`, `cliffscope sweep` and the dashboard's Launch form, so a run made
anywhere has the same run.toml: the full profile snapshot, the task snapshot, the parameters, and
the exact sample subset (ids + hash) — everything needed to re-run or resume it later.
"""

from __future__ import annotations

import os
from typing import Any

from cliffscope.profiles import find_profile
from cliffscope.store import RunDir, RunStore


def new_run(
    store: RunStore,
    kind: str,
    profile: str,
    task: str,
    params: dict[str, Any],
    limit: int | None = None,
    seed: int = 0,
    data_path: str | None = None,
    task_overrides: dict[str, Any] | None = None,
    profiles_dir: str | os.PathLike | None = None,
) -> RunDir:
    """Validate everything cheaply (no model load) and create the run directory."""
    from cliffscope.tasks.registry import get_task

    loaded = find_profile(profile, profiles_dir)
    task_obj = get_task(task, data_path=data_path, overrides=task_overrides)
    subset = task_obj.select(limit, seed)
    return store.create(
        kind=kind,
        profile=loaded.profile.snapshot() | {"source": str(loaded.path)},
        task=task_obj.snapshot(),
        params={k: v for k, v in params.items() if v is not None},
        subset=subset.to_dict(),
    )

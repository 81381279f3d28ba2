"""The loop every job runs: batches of samples, checkpoints, and a result that survives failure.

Analysis and sweep differ in what one batch computes, not in how a run walks its samples: the
fault point and cancel check before each batch, progress after it, a result.json rewritten
every `checkpoint_s` so the dashboard and a crash both see recent numbers, and a last write
when the loop is cancelled or fails, so nothing already computed is lost.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from typing import Any

from cliffscope.worker.context import JobContext


def run_in_batches(
    ctx: JobContext,
    todo: list[str],
    done: int,
    process: Callable[[list[str]], Iterable[dict[str, Any]]],
    keep: Callable[[dict[str, Any]], None],
    write_result: Callable[[bool], None],
    checkpoint_s: float,
) -> None:
    """Process ``todo`` batch by batch, after ``done`` samples of this rank were finished."""
    total = done + len(todo)
    last_write = time.time()
    try:
        for batch_ids in ctx.batches(todo):
            ctx.fault_point("batch")
            ctx.check_cancelled()
            for record in process(batch_ids):
                keep(record)
            done += len(batch_ids)
            ctx.progress(done, total, force=True)
            if time.time() - last_write >= checkpoint_s:
                write_result(False)
                last_write = time.time()
    except BaseException:  # cancelled or failed: readers still get what was finished
        with contextlib.suppress(Exception):  # never mask the error that ended the loop
            write_result(False)
        raise
    # one rank's share is not the run: `finalize` decides completeness over all shards
    write_result(done == total and ctx.world_size == 1)

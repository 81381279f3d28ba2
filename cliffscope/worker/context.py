"""What a job sees of its run: inputs, a place to put results, and a way to be told to stop.

Jobs (analysis, sweep) are written against this object only, so the same job code runs in a
detached worker, in a test, or as one rank of a data-parallel launch.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from cliffscope.store.jsonl import JsonlWriter
from cliffscope.store.run_dir import RunDir

FAULT_ENV = "CLIFFSCOPE_FAULT"


class Cancelled(Exception):
    """Raised inside a job when the user asked the run to stop."""


@dataclass
class JobContext:
    run: RunDir
    rank: int = 0
    world_size: int = 1
    _writer: JsonlWriter | None = field(default=None, repr=False)
    _stop: bool = field(default=False, repr=False)
    _last_progress: float = field(default=0.0, repr=False)
    _started: float = field(default_factory=time.time, repr=False)
    _fault_calls: dict[str, int] = field(default_factory=dict, repr=False)

    # ---- inputs ---------------------------------------------------------------------------
    @cached_property
    def spec(self) -> dict[str, Any]:
        return self.run.read_spec()

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.spec.get("params", {}))

    @cached_property
    def profile(self):
        from cliffscope.profiles import Profile

        snapshot = self.spec["profile"]
        return Profile.model_validate(
            {k: v for k, v in snapshot.items() if k in Profile.model_fields}
        )

    @cached_property
    def task(self):
        """The task object rebuilt from the snapshot in run.toml (not from today's registry)."""
        from cliffscope.tasks.registry import task_from_snapshot

        return task_from_snapshot(self.spec["task"])

    @property
    def all_ids(self) -> list[str]:
        return [str(i) for i in self.spec.get("subset", {}).get("ids", [])]

    @property
    def ids(self) -> list[str]:
        """This rank's share of the subset (round-robin, so ranks finish together)."""
        return self.all_ids[self.rank :: self.world_size]

    @property
    def max_new_tokens(self) -> int:
        """The run's answer budget: an explicit param, else the tighter of profile and task."""
        explicit = self.params.get("max_new_tokens")
        if explicit:
            return int(explicit)
        return int(min(self.profile.max_new_tokens, self.task.spec.max_new_tokens))

    def batches(self, ids: list[str]) -> Iterator[list[str]]:
        """``ids`` in chunks of the profile's batch size."""
        size = self.profile.batch_size
        for start in range(0, len(ids), size):
            yield ids[start : start + size]

    @cached_property
    def done_keys(self) -> set[str]:
        return self.run.done_keys()

    def load_adapter(self) -> Any:
        """The profile's model behind its adapter; the log says what the decoding policy applies
        and what it neutralises."""
        from cliffscope.models.loading import load_adapter

        self.log(f"loading {self.profile.model}")
        adapter = load_adapter(self.profile)
        for line in adapter.policy.log_lines():
            self.log(line)
        return adapter

    # ---- outputs --------------------------------------------------------------------------
    @property
    def samples_path(self):
        name = "samples.jsonl" if self.world_size == 1 else f"samples.rank{self.rank}.jsonl"
        return self.run.path / name

    def append(self, record: dict[str, Any]) -> None:
        """Append one finished sample (must carry `key` and `id`)."""
        if "key" not in record or "id" not in record:
            raise ValueError("sample records need 'key' and 'id'")
        if self._writer is None:
            self._writer = JsonlWriter(self.samples_path)
        self._writer.write(record)
        self.done_keys.add(str(record["key"]))

    def progress(self, done: int, total: int, force: bool = False, **extra: Any) -> None:
        """Progress event, throttled to ~4 per second so events.jsonl stays small."""
        now = time.time()
        if force or done >= total or now - self._last_progress > 0.25:
            self._last_progress = now
            self.run.append_event(
                "progress",
                done=done,
                total=total,
                rank=self.rank,
                elapsed=round(now - self._started, 2),
                **extra,
            )

    def log(self, message: str, level: str = "info") -> None:
        self.run.append_event("log", level=level, message=message, rank=self.rank)

    def write_result(self, result: dict[str, Any]) -> None:
        if self.rank == 0:
            self.run.write_result(result)

    # ---- stopping -------------------------------------------------------------------------
    def install_signal_handlers(self) -> None:
        def _handler(signum: int, _frame: Any) -> None:
            self._stop = True

        signal.signal(signal.SIGTERM, _handler)

    def should_stop(self) -> bool:
        return self._stop or self.run.cancel_requested()

    def check_cancelled(self) -> None:
        if self.should_stop():
            raise Cancelled()

    # ---- fault injection (reliability tests) ----------------------------------------------
    def fault_point(self, name: str) -> None:
        """Fail here on purpose when `CLIFFSCOPE_FAULT` says so, to prove recovery paths.

        `CLIFFSCOPE_FAULT="oom@batch:2"` raises `torch.OutOfMemoryError` the 2nd time the job
        reaches `fault_point("batch")`; actions: `error` (RuntimeError), `oom`, `kill`
        (SIGKILL to this process), `hang` (wait until cancelled); entries joined by commas.
        Unset, as always outside tests, it costs one environment lookup.
        """
        spec = os.environ.get(FAULT_ENV)
        if not spec:
            return
        count = self._fault_calls[name] = self._fault_calls.get(name, 0) + 1
        for entry in spec.split(","):
            action, _, where = entry.strip().partition("@")
            point, _, nth = where.partition(":")
            if point == name and nth.strip() == str(count):
                _inject(action, f"{name}:{count}", self)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def rank_from_env() -> tuple[int, int]:
    """(rank, world size) as set by torchrun / accelerate launch."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def _inject(action: str, where: str, ctx: JobContext) -> None:
    if action == "error":
        raise RuntimeError(f"injected failure at {where}")
    if action == "oom":
        import torch

        raise torch.OutOfMemoryError(
            f"CUDA out of memory. Tried to allocate 2.00 GiB (injected at {where})"
        )
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if action == "hang":
        deadline = time.time() + 600
        while not ctx.should_stop() and time.time() < deadline:
            time.sleep(0.05)
        return
    raise ValueError(f"{FAULT_ENV}: unknown fault action {action!r} (error, oom, kill, hang)")

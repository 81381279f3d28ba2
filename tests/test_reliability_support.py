"""Shared helpers of the reliability tests (no tests here): tiny runs, reference results that
an uninterrupted run gives, result comparison without volatile fields, worker processes.

"Equal" results mean equal numbers: flow curves, scores, per-k points, cliffs, and every sample
line by key. Wall-clock fields (`updated`, latencies) differ between any two runs and are
dropped first. Floats must agree to 1e-6 relative: the same batches on the same machine give
the same numbers; only a resumed batch of other samples may move the last digits.
"""

from __future__ import annotations

import atexit
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from cliffscope.run_factory import new_run
from cliffscope.store import RunDir, RunStore
from cliffscope.store import lock as run_lock
from cliffscope.vocab import STORED_DIGITS

LIMIT = 8  # samples per run: four batches of two
PARAMS: dict[str, dict[str, Any]] = {
    # what `cliffscope analyze --limit 8 --map-samples 2` and `cliffscope sweep --limit 8` store
    "analysis": {
        "query": "last",
        "heads": "mean",
        "cam": False,
        "map_samples": 2,
        "smooth_n": 0,
        "smooth_sigma": 0.15,
    },
    "sweep": {"layers": "all", "mode": "drop", "tolerance": 0.01, "engine": "shared"},
}
LINES_PER_SAMPLE = {"analysis": 1, "sweep": 5}  # sweep: base + k = 0..3 on the 3-layer model
VOLATILE = {"updated", "latency_ms", "latency_full_ms", "latency_batch_size", "elapsed", "t"}
ROOT = Path(__file__).resolve().parents[1]


def write_profile(directory: Path, model: str | Path, name: str = "tiny", **extra: Any) -> Path:
    """A profile TOML for a tiny checkpoint (what a user would keep under profiles/)."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = [
        f'name = "{name}"',
        'family = "llava"',
        f'model = "{model}"',
        'dtype = "float32"',
        "batch_size = 2",
        "max_new_tokens = 3",
    ]
    lines += [f"{key} = {value!r}".replace("'", '"') for key, value in extra.items()]
    path = directory / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def make_run(runs: Path, profiles: Path, kind: str, profile: str = "tiny") -> RunDir:
    """A queued tiny run on shapes-vqa: the same subset and parameters every time."""
    return new_run(
        RunStore(runs),
        kind,
        profile,
        "shapes-vqa",
        PARAMS[kind],
        limit=LIMIT,
        seed=0,
        profiles_dir=profiles,
    )


def comparable(obj: Any) -> Any:
    """`obj` without wall-clock fields, at any depth."""
    if isinstance(obj, dict):
        return {k: comparable(v) for k, v in obj.items() if k not in VOLATILE}
    if isinstance(obj, list):
        return [comparable(v) for v in obj]
    return obj


#: Run files keep `STORED_DIGITS` significant digits, so two correct runs whose rounding noise
#: straddles a boundary differ by one unit there: up to 1e-5 relative at 6 digits (an AVX-512
#: machine gives 0.396193 where the fixtures' machine gave 0.396194).
STORED_REL_TOL = 10.0 ** (1 - STORED_DIGITS)


def assert_same(a: Any, b: Any, where: str = "result") -> None:
    """Equal structure, equal strings and ints, floats within one stored digit (1e-7 absolute)."""
    if isinstance(a, float) or isinstance(b, float):
        assert isinstance(a, (int, float)) and isinstance(b, (int, float)), (
            f"{where}: {a!r} != {b!r}"
        )
        assert math.isclose(a, b, rel_tol=STORED_REL_TOL, abs_tol=1e-7), f"{where}: {a!r} != {b!r}"
    elif isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), f"{where}: keys {sorted(a.keys() ^ b.keys())} differ"
        for key in a:
            assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), f"{where}: {len(a)} items != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def lines_by_key(run: RunDir) -> dict[str, dict[str, Any]]:
    return {str(r["key"]): comparable(r) for r in run.samples()}


def assert_same_as_reference(run: RunDir, kind: str, model: Path) -> None:
    """The run finished complete, and its result and every sample line equal the reference."""
    result, lines = reference(kind, str(model))
    got = run.result()
    assert got is not None and got["complete"] is True, got
    assert_same(comparable(got), result)
    assert_same(lines_by_key(run), lines, "samples")


@cache
def reference(kind: str, model: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Result and sample lines of an uninterrupted run (computed once per session, in-process)."""
    from cliffscope.worker.runner import run_worker

    root = Path(tempfile.mkdtemp(prefix=f"cliffscope-reference-{kind}-"))
    atexit.register(shutil.rmtree, root, True)
    write_profile(root / "profiles", model)
    run = make_run(root / "runs", root / "profiles", kind)
    assert run_worker(run.path) == 0, run.events()[-3:]
    assert run.status.value == "done"
    return comparable(run.result()), lines_by_key(run)


def wait_until(condition: Callable[[], object], timeout: float, what: str, poll: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def count_lines(run: RunDir) -> int:
    return len(run.samples())


def cli_env(**extra: str) -> dict[str, str]:
    """Environment of a `cliffscope` subprocess: this checkout first on the path, no fault."""
    env = {k: v for k, v in os.environ.items() if k != "CLIFFSCOPE_FAULT"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra)
    return env


def cliffscope(
    runs: Path, profiles: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 240
) -> subprocess.CompletedProcess:
    """`python -m cliffscope --runs-dir R --profiles-dir P ARGS` to completion."""
    return subprocess.run(
        cli_args(runs, profiles, *args),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env or cli_env(),
        cwd=ROOT,
    )


def cli_args(runs: Path, profiles: Path, *args: str) -> list[str]:
    base = [sys.executable, "-m", "cliffscope", "--runs-dir", str(runs)]
    return [*base, "--profiles-dir", str(profiles), *args]


def kill_worker(run: RunDir) -> int:
    """SIGKILL the run's live worker (its pid is in the lock file); returns the pid."""
    pid = run_lock.holder_pid(run.path)
    assert pid and run.is_locked(), "no live worker to kill"
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not run.is_locked(), 20, "the killed worker's lock to drop")
    return pid

"""Shared helpers of the dashboard tests (no tests here): a fake store, a fake worker, waits.

The fake worker is a real detached process started through `cliffscope.worker.launch` (the
test swaps only the command line), so the lock hand-off, status changes, cancel signal and
resume path are the production ones; it just computes nothing and sleeps between steps.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from cliffscope.store import RunStore
from cliffscope.tui.app import CliffscopeApp
from cliffscope.tui.capture import screen_text
from tests.fake_runs import make_analysis_run, make_sweep_run

NOW = datetime(2026, 1, 2, 5, 0, 0, tzinfo=timezone.utc)

FAKE_WORKER = r"""
import os, signal, sys, time
from cliffscope.store import RunDir
from cliffscope.store import lock as run_lock
from cliffscope.store.jsonl import JsonlWriter

run = RunDir(sys.argv[1])
lock = run_lock.adopt_inherited(run.path) or run_lock.acquire(run.path)
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
run.clear_cancel()
run.set_status("running")
spec = run.read_spec()
ids = [str(i) for i in spec["subset"]["ids"]]
delay = float(os.environ.get("FAKE_WORKER_DELAY", "0.05"))
layers = 4
done = run.done_keys()
ks = [k for k in range(layers + 1) if f"{ids[0]}@{k}" not in done]
points = list((run.result() or {}).get("points", []))
with JsonlWriter(run.path / "samples.jsonl") as out:
    if f"{ids[0]}@base" not in done:
        for sid in ids:
            out.write({"key": f"{sid}@base", "id": sid, "k": "base", "prediction": "red", "score": 1.0})
    for k in ks:
        if stop or run.cancel_requested():
            break
        for sid in ids:
            ok = k >= 2
            out.write({"key": f"{sid}@{k}", "id": sid, "k": k, "prediction": "red" if ok else "blue", "score": float(ok)})
        score = 1.0 if k >= 2 else 0.0
        points.append({"k": k, "score": score, "delta": score - 1.0, "lo": score - 1.0, "hi": score - 1.0,
                       "flips_to_wrong": 0 if k >= 2 else len(ids), "flips_to_right": 0,
                       "flops_saved": (layers - k) / layers / 2, "kv_saved": (layers - k) / layers / 2})
        run.write_result({"schema_version": 1, "kind": "sweep", "num_layers": layers, "n_samples": len(ids),
                          "metric": "exact_match", "higher_is_better": True, "complete": False,
                          "updated": "2026-01-02T03:04:05Z", "mode": "drop", "keep_ratio": None,
                          "layers": list(range(layers + 1)),
                          "baseline": {"score": 1.0, "lo": 1.0, "hi": 1.0}, "points": points,
                          "cliff": {"layer": 2 if any(p["k"] == 2 for p in points) else None,
                                    "verdict": "cliff", "reason": "fake", "tolerance": 0.01}})
        run.append_event("progress", done=len(points), total=layers + 1)
        time.sleep(delay)
run.set_status("cancelled" if (stop or run.cancel_requested()) else "done")
lock.release()
"""


def fake_worker(tmp_path: Path, monkeypatch) -> Path:
    """Make `launch()` start the fake worker instead of `python -m cliffscope.worker`."""
    script = tmp_path / "fake_worker.py"
    script.write_text(FAKE_WORKER, encoding="utf-8")
    monkeypatch.setattr(
        "cliffscope.worker.launch.worker_command",
        lambda run_path, processes=1: [sys.executable, str(script), str(run_path)],
    )
    return script


def fake_store(root: Path) -> RunStore:
    """Three finished runs with fixed ids and times: an analysis, its sweep, a failed sweep."""
    store = RunStore(root)
    make_analysis_run(store, seed=1)
    make_sweep_run(store, seed=2, id_prefix="shapes")  # ids the task redraws: pictures
    make_sweep_run(
        store,
        seed=3,
        status="failed",
        profile="llava-1.5-7b",
        model="llava-hf/llava-1.5-7b-hf",
        ks=[0, 1, 2],
    )
    return store


def make_app(runs: Path, profiles: Path | None = None, **kwargs) -> CliffscopeApp:
    kwargs.setdefault("now", lambda: NOW)
    kwargs.setdefault("gpu_probe", False)
    kwargs.setdefault("poll_interval", 0.1)
    return CliffscopeApp(runs, profiles, **kwargs)


async def wait_for(
    pilot, condition: Callable[[], object], timeout: float = 10.0, what: str = ""
) -> None:
    """Pump the app until `condition()` holds; fail with what the screen shows."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await pilot.pause(0.05)
        if condition():
            return
    raise AssertionError(f"timed out waiting for {what or condition}\n{screen_text(pilot.app)}")


def shows(pilot, text: str) -> Callable[[], bool]:
    return lambda: text in screen_text(pilot.app)

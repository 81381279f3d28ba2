"""Benchmark: the run store at scale — incremental reads against a full reload each poll.

Builds a store of `--runs` fake runs (tests/fake_runs.py), one analysis run of `--big` sample
lines, and one live run that a separate writer process appends a sample line and a progress
event to every 100 ms. Then, in one run, each measured the incremental way (what cliffscope
does) and the naive way (re-read everything every poll):

1. list: every run's row (status, progress, headline) — `RunPoller.scan()` in steady state
   against `RunStore.list()` + `summary()` of each run (what `cliffscope runs list` does once);
2. tail: the new lines of the big run — `JsonlTail.read_new()` after 10 appended lines against
   `RunDir.samples()` (parse every line); plus the tail's first, full read (opening the run);
3. keys: the dashboard in-process (`App.run_test`), time from a key press to the repainted
   screen — runs table (down) and the big run's view (tab switch) — with the real poller and
   with a naive poller that forgets its cursors every poll (re-reads every run and reposts the
   big run's 50,000 lines), both at the app's default 0.5 s poll.

Usage:

    PYTHONPATH=. python bench/store_scale.py [--runs 300] [--big 50000] [--keys 30] [--json f]

`bench/tui.py` measures the real terminal end to end (pty, cold start); this one isolates what
the store-reading design buys. Both builders are deterministic.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

LIVE_WRITER = r"""
import sys, time
from cliffscope.store import RunDir
from cliffscope.store import lock as run_lock
from cliffscope.store.jsonl import JsonlWriter
run = RunDir(sys.argv[1])
lock = run_lock.acquire(run.path)
run.set_status("running")
with JsonlWriter(run.path / "samples.jsonl", fsync=False) as out:
    i = 0
    while True:
        i += 1
        out.write({"key": f"live-{i}@0", "id": f"live-{i}", "k": 0, "prediction": "red",
                   "score": 1.0})
        run.append_event("progress", done=i, total=1_000_000)
        time.sleep(0.1)
"""
BIG_ID = "zz-big-analysis"
LIVE_ID = "zz-live-sweep"


def build_store(root: Path, runs: int, big: int) -> Path:
    """`runs` small runs, one analysis run of `big` lines, one queued run for the live writer."""
    from cliffscope.store import RunStore
    from tests.fake_runs import make_analysis_run, make_sweep_run

    store = RunStore(root)
    for i in range(runs):
        if i % 2:
            make_sweep_run(store, seed=i, n_samples=10, task=f"task-{i % 7}")
        else:
            make_analysis_run(store, seed=i, n_samples=10, n_maps=0, task=f"task-{i % 7}")
    grow(make_analysis_run(store, seed=90_000, n_maps=1, run_id=BIG_ID), big)
    make_sweep_run(store, seed=90_001, ks=[0], status="queued", run_id=LIVE_ID)
    return root


def grow(run: Any, n: int) -> None:
    """`n` sample lines cloned from the run's first (ids in run.toml written by hand: tomlkit
    takes minutes on a 50,000-element array)."""
    template = json.loads((run.path / "samples.jsonl").read_text().splitlines()[0])
    ids = [f"b-{i:06d}" for i in range(n)]
    with open(run.path / "samples.jsonl", "w", encoding="utf-8") as out:
        out.writelines(json.dumps(dict(template, key=sid, id=sid)) + "\n" for sid in ids)
    head, _, tail = (run.path / "run.toml").read_text().partition("[subset]")
    rest = tail.split("\n[", 1)
    quoted = ", ".join(f'"{i}"' for i in ids)
    subset = f'[subset]\nlimit = {n}\nseed = 0\nhash = "sha256:bench"\nids = [{quoted}]\n'
    (run.path / "run.toml").write_text(head + subset + ("\n[" + rest[1] if len(rest) > 1 else ""))
    result = run.result()
    result["n_samples"] = n
    run.write_result(result)
    run.append_event("progress", done=n, total=n)


def stats(values_s: list[float]) -> dict[str, float]:
    ms = sorted(v * 1e3 for v in values_s)
    return {
        "median_ms": round(statistics.median(ms), 2),
        "p90_ms": round(ms[math.ceil(0.9 * len(ms)) - 1], 2),
        "max_ms": round(ms[-1], 2),
        "n": len(ms),
    }


def timed(fn: Any, reps: int, between: Any = None) -> list[float]:
    out = []
    for _ in range(reps):
        if between is not None:
            between()
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


# ---- 1 + 2: store reads --------------------------------------------------------------------
def measure_list(root: Path, reps: int) -> dict[str, Any]:
    """Rows of every run: steady-state incremental poll against a full re-read."""
    from cliffscope.cli.runs_cmd import summary
    from cliffscope.store import RunStore
    from cliffscope.tui.poller import RunPoller

    store = RunStore(root)
    poller = RunPoller(store)
    first = timed(poller.scan, 1)
    incremental = timed(poller.scan, reps, between=lambda: time.sleep(0.05))
    naive = timed(lambda: [summary(r) for r in store.list()], reps)
    rows = {r.id: (r.status, r.done, r.total) for r in poller.scan()[0]}
    full = {s["id"]: (s["status"], s["done"], s["total"]) for s in map(summary, store.list())}
    return {
        "runs": len(rows),
        "same_rows": rows.keys() == full.keys(),
        "poller_first_scan": stats(first),
        "incremental": stats(incremental),
        "naive": stats(naive),
        "ratio": round(statistics.median(naive) / statistics.median(incremental), 1),
    }


def measure_tail(root: Path, reps: int) -> dict[str, Any]:
    """New lines of the big run: 10 appended lines read by the tail against a full parse."""
    from cliffscope.store import RunDir
    from cliffscope.store.jsonl import JsonlTail, JsonlWriter

    run = RunDir(root / BIG_ID)
    path = run.path / "samples.jsonl"
    tail = JsonlTail(path)
    first = timed(tail.read_new, 1)
    seen = len(run.samples())
    template = dict(run.samples()[0])
    counter = iter(range(10**9))

    def append() -> None:
        with JsonlWriter(path, fsync=False) as out:
            for _ in range(10):
                sid = f"new-{next(counter):07d}"
                out.write(dict(template, key=sid, id=sid))

    got: list[int] = []
    incremental = []
    for _ in range(reps):
        append()
        start = time.perf_counter()
        got.append(len(tail.read_new()))
        incremental.append(time.perf_counter() - start)
    naive = timed(run.samples, max(3, reps // 5))
    return {
        "lines": seen,
        "file_mb": round(path.stat().st_size / 2**20, 1),
        "tail_first_read": stats(first),
        "incremental": stats(incremental),
        "incremental_got_every_line": got == [10] * reps,
        "naive": stats(naive),
        "ratio": round(statistics.median(naive) / statistics.median(incremental), 1),
    }


# ---- 3: the dashboard ----------------------------------------------------------------------
def naive_poller_class() -> type:
    from cliffscope.tui.messages import RunDetail
    from cliffscope.tui.poller import RunPoller

    class NaivePoller(RunPoller):
        """Full reload each poll: every run re-read from scratch, and each watched run's
        result and samples re-read whole and reposted (the UI then rebuilds its views)."""

        def scan(self, limit: int | None = None):  # type: ignore[no-untyped-def]
            self._tracked.clear()
            rows, _ = super().scan()
            return rows, True

        def details(self) -> list[RunDetail]:
            self.behind = False
            with self._lock:
                watched = list(self._watches)
            out = []
            for run_id in watched:
                tracked = self._tracked.get(run_id)
                if tracked is not None:
                    run = tracked.run
                    out.append(
                        RunDetail(
                            run_id,
                            tracked.row,
                            run.result(),
                            True,
                            run.samples(),
                            list(tracked.recent),
                            True,
                        )
                    )
            return out

    return NaivePoller


async def _until(pilot: Any, condition: Any, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"dashboard: timed out waiting for {what}")
        await pilot.pause(0.05)


def _frame_text(renderable: Any, size: tuple[int, int]) -> str:
    import io

    from rich.console import Console

    console = Console(
        width=size[0],
        height=size[1],
        file=io.StringIO(),
        record=True,
        force_terminal=True,
        color_system="truecolor",
    )
    console.print(renderable)
    return console.export_text(styles=False)


async def _press(pilot: Any, frames: list, key: str, shows: Any) -> float:
    """Seconds from posting `key` to the first frame whose text passes `shows(text)`."""
    frames.clear()
    start = time.perf_counter()
    await pilot.press(key)
    await _until(
        pilot,
        lambda: any(shows(_frame_text(r, pilot.app.size)) for _, r in frames),
        f"the frame after {key!r}",
        timeout=30,
    )
    first = next(t for t, r in frames if shows(_frame_text(r, pilot.app.size)))
    return first - start


async def key_latency(root: Path, naive: bool, presses: int) -> dict[str, Any]:
    """Key press -> first painted frame showing its effect, timed where frames are emitted
    (`App._display`, which a real terminal's driver would write out)."""
    from cliffscope.tui.app import CliffscopeApp
    from cliffscope.tui.screens.run_view import RunViewScreen
    from cliffscope.tui.widgets.runs_table import RunsTable

    app = CliffscopeApp(root, None, gpu_probe=False, poll_interval=0.5)
    if naive:
        app.poller = naive_poller_class()(app.store)
    frames: list[tuple[float, Any]] = []
    display = app._display

    def spy(screen: Any, renderable: Any) -> None:
        if renderable is not None:
            frames.append((time.perf_counter(), renderable))
        display(screen, renderable)

    app._display = spy  # type: ignore[method-assign]
    out: dict[str, Any] = {}
    async with app.run_test(size=(100, 30)) as pilot:
        await _until(pilot, lambda: app.loaded and len(app.runs) > 2, "the runs table")
        await pilot.pause(1.0)
        table = app.screen.query_one(RunsTable)
        times = []
        for _ in range(presses):
            target = table.shown[min(table.cursor_row + 1, len(table.shown) - 1)].id
            detail = f"{target}  sorted by"  # the detail line under the table
            times.append(await _press(pilot, frames, "down", lambda t, d=detail: d in t))
            await pilot.pause(0.1)
        out["runs_table_down"] = stats(times)
        app.open_run(BIG_ID)
        await _until(pilot, lambda: isinstance(app.screen, RunViewScreen), "the run view")
        await pilot.pause(2.0)  # the first full read of the big run
        times = []
        for i in range(presses):
            key, words = ("4", "samples") if i % 2 == 0 else ("1", "image")
            times.append(await _press(pilot, frames, key, lambda t, w=words: w in t.lower()))
            await pilot.pause(0.1)
        out["run_view_tabs"] = stats(times)
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--big", type=int, default=50_000)
    ap.add_argument("--reps", type=int, default=20, help="repetitions of the store reads")
    ap.add_argument("--keys", type=int, default=30, help="key presses per screen and poller")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cliffscope-scale-") as tmp:
        root = Path(tmp) / "runs"
        start = time.perf_counter()
        build_store(root, args.runs, args.big)
        out: dict[str, Any] = {"config": vars(args), "build_s": round(time.perf_counter() - start)}
        writer = subprocess.Popen([sys.executable, "-c", LIVE_WRITER, str(root / LIVE_ID)])
        try:
            time.sleep(1.0)
            out["list"] = measure_list(root, args.reps)
            print("list:", out["list"], flush=True)
            out["tail"] = measure_tail(root, args.reps)
            print("tail:", out["tail"], flush=True)
            if args.keys:
                for naive in (False, True):
                    name = "keys_naive" if naive else "keys_incremental"
                    out[name] = asyncio.run(key_latency(root, naive, args.keys))
                    print(f"{name}:", out[name], flush=True)
        finally:
            writer.kill()
            writer.wait()
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    return out


if __name__ == "__main__":
    main()

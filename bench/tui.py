"""Benchmark: dashboard cold start to first frame, and key-press-to-repaint latency under load.

Everything runs the real `cliffscope` command in a pseudo-terminal (Textual's Linux driver, as
in tmux over SSH) at 100x30 on a store of `--runs` fake runs (tests/fake_runs.py) plus one
analysis run of `--big` samples. Times are measured from this side of the terminal:

1. cold start: spawn `python -m cliffscope` -> the first frame (the table's header is drawn), and
   -> the runs table filled (a run's profile name is drawn); `--starts` fresh processes;
2. key latency on the runs table: press "down" and wait until the newly highlighted run's id
   is drawn in the detail line; `--keys` presses, 50-150 ms apart;
3. in the run view of the big run: time to open it, to show the Samples tab and to have read
   all its samples (in slices, in the background); then key latency switching between the
   Flow and Samples tabs, waiting until each tab's own text is drawn;

while `--burners` processes keep the CPU cores busy (default: one per core), one of them also
acting as a live worker: it holds a run's lock and appends a progress event and a sample line
every 100 ms, so the poller has real work too. Usage:

    PYTHONPATH=. python bench/tui.py [--runs 300] [--big 50000] [--keys 40] [--json out.json]

`--capture FILE` instead writes a plain-text capture of the main screens (fake runs, 100x30)
for the README: `PYTHONPATH=. python bench/tui.py --capture docs/tui-capture.txt`.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import pty
import select
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path
from typing import Any

COLS, ROWS = 100, 30
DOWN, QUIT = b"\x1b[B", b"q"

BURNER = r"""
import sys, time
from cliffscope.store import RunDir
from cliffscope.store import lock as run_lock
from cliffscope.store.jsonl import JsonlWriter
live = sys.argv[1] if len(sys.argv) > 1 else ""
if not live:
    while True:
        pass
run = RunDir(live)
lock = run_lock.acquire(run.path)
run.set_status("running")
out = JsonlWriter(run.path / "samples.jsonl")
i, last = 0, 0.0
while True:
    now = time.time()
    if now - last >= 0.1:
        last = now
        i += 1
        out.write({"key": f"live-{i}@0", "id": f"live-{i}", "k": 0, "prediction": "red", "score": 1.0})
        run.append_event("progress", done=i, total=100000)
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=300, help="fake runs in the store")
    ap.add_argument("--big", type=int, default=50_000, help="samples of the one big run")
    ap.add_argument("--starts", type=int, default=5, help="cold starts to time")
    ap.add_argument("--keys", type=int, default=40, help="key presses to time per test")
    ap.add_argument("--burners", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--store", help="reuse (or create) the store here instead of a temp dir")
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument("--capture", help="write a text capture of the main screens here and stop")
    return ap.parse_args(argv)


# ---- the store ----------------------------------------------------------------------------------
def build_store(root: Path, runs: int, big: int) -> dict[str, Any]:
    """`runs` small runs, one big analysis and one run the live burner writes into."""
    from cliffscope.store import RunStore
    from tests.fake_runs import make_analysis_run, make_sweep_run

    store = RunStore(root)
    marker = root / ".bench-store"
    if not marker.exists():
        for i in range(runs):
            if i % 2:
                make_sweep_run(store, seed=i, n_samples=10, task=f"task-{i % 7}")
            else:
                make_analysis_run(store, seed=i, n_samples=10, n_maps=1, task=f"task-{i % 7}")
        grow(make_analysis_run(store, seed=90_000, n_maps=1, run_id="zz-big-analysis"), big)
        make_sweep_run(store, seed=90_001, ks=[0], status="queued", run_id="zz-live-sweep")
        marker.write_text("ok\n")
    ids = sorted((p.name for p in root.iterdir() if (p / "run.toml").exists()), reverse=True)
    return {"ids": ids, "big": "zz-big-analysis", "live": str(root / "zz-live-sweep")}


def grow(run, n: int) -> None:
    """Make `run` a run of `n` samples: sample lines cloned from its own, ids in run.toml.

    run.toml is written by hand here because tomlkit takes minutes on a 50,000-id array."""
    import json

    template = json.loads((run.path / "samples.jsonl").read_text().splitlines()[0])
    ids = [f"b-{i:06d}" for i in range(n)]
    with open(run.path / "samples.jsonl", "w", encoding="utf-8") as out:
        for sid in ids:
            out.write(json.dumps(dict(template, key=sid, id=sid)) + "\n")
    text = (run.path / "run.toml").read_text()
    head, _, tail = text.partition("[subset]")
    rest = tail.split("\n[", 1)
    subset = (
        f'[subset]\nlimit = {n}\nseed = 0\nhash = "sha256:bench"\nids = ['
        + ", ".join(f'"{i}"' for i in ids)
        + "]\n"
    )
    (run.path / "run.toml").write_text(head + subset + ("\n[" + rest[1] if len(rest) > 1 else ""))
    result = run.result()
    result["n_samples"] = n
    run.write_result(result)
    run.append_event("progress", done=n, total=n)


# ---- a terminal ---------------------------------------------------------------------------------
class Terminal:
    """`cliffscope` in a pty; a reader thread keeps every byte it draws with its arrival time."""

    def __init__(self, runs: Path, profiles: Path) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
        env = dict(os.environ, TERM="xterm-256color", COLUMNS=str(COLS), LINES=str(ROWS))
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cliffscope",
                "--runs-dir",
                str(runs),
                "--profiles-dir",
                str(profiles),
            ],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            start_new_session=True,
        )
        os.close(slave)
        self.chunks: list[tuple[float, bytes]] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            ready, _, _ = select.select([self.master], [], [], 0.5)
            if not ready:
                if self.proc.poll() is not None:
                    return
                continue
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            with self._lock:
                self.chunks.append((time.perf_counter(), data))

    def mark(self) -> int:
        with self._lock:
            return len(self.chunks)

    def wait_for(self, text: str, since: int = 0, timeout: float = 30.0) -> float:
        """Arrival time of the chunk that completes `text` in output after chunk `since`."""
        needle = text.encode()
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            with self._lock:
                chunks = self.chunks[since:]
            buffer = b""
            for when, data in chunks:
                buffer += data
                if needle in buffer:
                    return when
            time.sleep(0.002)
        raise TimeoutError(f"{text!r} not drawn within {timeout} s")

    def press(self, key: bytes, expect: str) -> float:
        """Seconds from writing `key` to the terminal until `expect` is drawn."""
        since = self.mark()
        sent = time.perf_counter()
        os.write(self.master, key)
        return self.wait_for(expect, since) - sent

    def close(self) -> None:
        try:
            os.write(self.master, QUIT)
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
        os.close(self.master)


def summary(values: list[float]) -> dict[str, float]:
    ms = sorted(v * 1000 for v in values)
    return {
        "n": len(ms),
        "median_ms": round(statistics.median(ms), 1),
        "p90_ms": round(ms[int(0.9 * (len(ms) - 1))], 1),
        "max_ms": round(ms[-1], 1),
    }


# ---- the measurements ---------------------------------------------------------------------------
def cold_starts(runs: Path, profiles: Path, n: int) -> dict[str, Any]:
    first, table = [], []
    for _ in range(n):
        term = Terminal(runs, profiles)
        first.append(term.wait_for("progress") - term.started)  # runs table's column labels
        table.append(term.wait_for("demo-llava") - term.started)
        term.close()
    return {"first_frame": summary(first), "table_filled": summary(table)}


def runs_table_keys(term: Terminal, ids: list[str], n: int) -> dict[str, Any]:
    latencies = []
    for i in range(1, min(n, len(ids) - 1) + 1):
        latencies.append(term.press(DOWN, ids[i]))
        time.sleep(0.05 + 0.1 * (i % 3) / 2)
    return summary(latencies)


def run_view_keys(term: Terminal, ids: list[str], big: str, big_n: int, n: int) -> dict[str, Any]:
    index = ids.index(big)
    term.press(b"\x1b[1;5H", ids[0])  # ctrl+home: back to the top
    for i in range(1, index + 1):
        term.press(DOWN, ids[i])
    opened = term.press(b"\r", "attention mass per layer")
    since, sent = term.mark(), time.perf_counter()
    first_samples = term.press(b"4", "(f: only wrong)")
    loaded = term.wait_for(f"{big_n} samples", since, timeout=120) - sent
    latencies = []
    for i in range(n):
        key, expect = (
            (b"1", "attention mass per layer") if i % 2 == 0 else (b"4", "(f: only wrong)")
        )
        time.sleep(0.1)
        latencies.append(term.press(key, expect))
    return {
        "open_run_view_ms": round(opened * 1000, 1),
        "first_samples_tab_ms": round(first_samples * 1000, 1),
        "all_samples_listed_s": round(loaded, 2),
        "tab_switch": summary(latencies),
    }


# ---- text capture for the README ----------------------------------------------------------------
CAPTURES = (
    ("Runs (bare `cliffscope`)", ()),
    (
        "Run view, Flow tab (analysis; the sweep's cliff beside the flow's)",
        ("down", "down", "enter"),
    ),
    ("Run view, Maps tab (attention map over the image, half-block cells)", ("2",)),
    ("Run view, Sweep tab (sweep run)", ("escape", "up", "enter")),
    ("Run view, Samples tab (the selected sample's picture, question, answers per k)", ("4",)),
    ("Compare (two runs marked with space, then c)", ("escape", "space", "space", "c")),
    ("Profiles (p)", ("escape", "p")),
    ("Launch (n, kind = sweep)", ("escape", "n", "enter", "down", "enter")),
)


def capture(path: Path) -> None:
    """Drive the app with Pilot on fake runs and write what each main screen shows."""
    import asyncio
    import shutil
    from datetime import datetime, timezone

    from cliffscope import paths
    from cliffscope.store import RunStore
    from cliffscope.tui.app import CliffscopeApp
    from cliffscope.tui.capture import screen_text
    from tests.fake_runs import make_analysis_run, make_sweep_run

    root = Path(tempfile.mkdtemp(prefix="cliffscope-capture-"))
    os.chdir(root)
    store = RunStore("runs")
    make_analysis_run(store, seed=1, profile="demo", num_layers=8)
    make_sweep_run(store, seed=2, profile="demo", num_layers=8, id_prefix="shapes")
    make_sweep_run(
        store,
        seed=3,
        profile="llava-1.5-7b",
        model="llava-hf/llava-1.5-7b-hf",
        status="failed",
        ks=[0, 1, 2],
    )
    Path("profiles").mkdir()
    for name in ("demo", "llava-1.5-7b", "qwen2-vl-7b"):
        shutil.copy(paths.BUILTIN_PROFILES_DIR / f"{name}.toml", Path("profiles") / f"{name}.toml")
    now = datetime(2026, 1, 2, 5, 0, tzinfo=timezone.utc)
    app = CliffscopeApp("runs", "profiles", now=lambda: now, gpu_probe=False, poll_interval=0.2)
    sections: list[str] = []

    async def drive() -> None:
        async with app.run_test(size=(COLS, ROWS)) as pilot:
            while not app.loaded:
                await pilot.pause(0.1)
            for title, keys in CAPTURES:
                await pilot.press(*keys)
                await pilot.pause(1.5)  # partner runs, maps and task lists load in threads
                sections.append(f"## {title}\n\n" + screen_text(app))

    asyncio.run(drive())
    body = "\n\n".join(sections)
    header = f"cliffscope dashboard, text capture at {COLS}x{ROWS} (fake runs; `bench/tui.py --capture`)\n\n"
    path.write_text(header + body + "\n", encoding="utf-8")
    shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.capture:
        target = Path(args.capture).resolve()
        capture(target)
        print(f"wrote {target}")
        return {}
    root = Path(args.store) if args.store else Path(tempfile.mkdtemp(prefix="cliffscope-bench-"))
    runs, profiles = root / "runs", root / "profiles"
    profiles.mkdir(parents=True, exist_ok=True)
    from cliffscope import paths

    (profiles / "demo.toml").write_text((paths.BUILTIN_PROFILES_DIR / "demo.toml").read_text())
    t = time.perf_counter()
    store = build_store(runs, args.runs, args.big)
    print(f"store: {len(store['ids'])} runs in {runs} ({time.perf_counter() - t:.1f} s to build)")

    out: dict[str, Any] = {
        "runs": len(store["ids"]),
        "big_samples": args.big,
        "size": f"{COLS}x{ROWS}",
    }
    out["cold_start_idle"] = cold_starts(runs, profiles, args.starts)
    print("cold start (idle):", out["cold_start_idle"])

    burner = root / "burner.py"
    burner.write_text(BURNER)
    procs = [subprocess.Popen([sys.executable, str(burner), store["live"]])]
    procs += [subprocess.Popen([sys.executable, str(burner)]) for _ in range(args.burners - 1)]
    try:
        time.sleep(1.0)
        out["burners"] = args.burners
        out["cold_start_loaded"] = cold_starts(runs, profiles, args.starts)
        print("cold start (cores busy):", out["cold_start_loaded"])
        term = Terminal(runs, profiles)
        term.wait_for("demo-llava")
        time.sleep(3.0)  # let the post-start warm-up imports finish
        ids = store["ids"]
        out["runs_table_down"] = runs_table_keys(term, ids, args.keys)
        print("runs table, key down:", out["runs_table_down"])
        out["run_view"] = run_view_keys(term, ids, store["big"], args.big, args.keys)
        print("run view of the big run:", out["run_view"])
        term.close()
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    return out


if __name__ == "__main__":
    main()

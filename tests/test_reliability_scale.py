"""The incremental store readers the dashboard relies on give exactly what a full reload
gives (the speed is measured by `bench/store_scale.py`, see docs/benchmarks.md); and the
benchmark itself still runs, on a small store."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from cliffscope.cli.runs_cmd import summary
from cliffscope.store import RunDir, RunStore
from cliffscope.store.jsonl import JsonlTail, JsonlWriter
from cliffscope.tui.poller import RunPoller
from tests.fake_runs import make_sweep_run

ROOT = Path(__file__).resolve().parents[1]


def load_bench():
    spec = importlib.util.spec_from_file_location("store_scale", ROOT / "bench" / "store_scale.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_poller_rows_match_a_full_reload_while_runs_change(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    bench = load_bench()
    bench.build_store(tmp_path, runs=6, big=300)
    live = RunDir(tmp_path / bench.LIVE_ID)
    poller = RunPoller(store)

    def same() -> None:
        rows = {r.id: (r.status, r.done, r.total, r.headline) for r in poller.scan()[0]}
        full = {
            s["id"]: (s["status"], s["done"], s["total"], s["headline"])
            for s in map(summary, store.list())
        }
        assert rows == full

    same()
    for step in range(1, 4):  # a worker makes progress, then the run is removed
        live.set_status("running" if step < 3 else "done")
        live.append_event("progress", done=step, total=3)
        same()
    make_sweep_run(store, seed=77, ks=[0])
    same()
    store.remove(live.id)
    same()


def test_tail_accumulates_exactly_the_full_file(tmp_path: Path) -> None:
    path = tmp_path / "samples.jsonl"
    tail = JsonlTail(path)
    got: list[dict] = []
    with JsonlWriter(path, fsync=False) as out:
        for i in range(500):
            out.write({"key": f"s{i}", "id": f"s{i}", "k": i % 5})
            if i % 37 == 0:
                got.extend(tail.read_new())
    with open(path, "ab") as fh:
        fh.write(b'{"key": "torn')  # a worker mid-append: not yet a line
    got.extend(tail.read_new())
    assert got == RunDir(tmp_path).samples() and len(got) == 500


def test_store_scale_bench_runs_small(tmp_path: Path) -> None:
    bench = load_bench()
    root = bench.build_store(tmp_path / "runs", runs=4, big=200)
    listed = bench.measure_list(root, reps=2)
    assert listed["runs"] == 6 and listed["same_rows"]
    tailed = bench.measure_tail(root, reps=3)
    assert tailed["lines"] == 200 and tailed["incremental_got_every_line"]

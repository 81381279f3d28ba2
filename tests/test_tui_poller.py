"""The poller reads run dirs incrementally: only appended lines, only rewritten results."""

from __future__ import annotations

import os

import pytest

from cliffscope.store import RunStore
from cliffscope.store.jsonl import append_jsonl
from cliffscope.tui.poller import RunPoller
from tests.fake_runs import make_analysis_run, make_sweep_run


@pytest.fixture
def store(tmp_path) -> RunStore:
    return RunStore(tmp_path / "runs")


def test_scan_summarises_every_run(store) -> None:
    analysis = make_analysis_run(store, seed=1)
    sweep = make_sweep_run(store, seed=2, ks=[0, 1, 2], status="running")  # no live worker
    rows, changed = RunPoller(store).scan()
    assert changed
    by_id = {r.id: r for r in rows}
    assert [r.id for r in rows] == sorted(by_id, reverse=True)
    a, s = by_id[analysis.id], by_id[sweep.id]
    assert (a.kind, a.status, a.done, a.total, a.cliff) == ("analysis", "done", 20, 20, 3)
    assert a.headline.startswith("exact_match") and a.score == pytest.approx(0.9)
    assert s.status == "interrupted"  # running on disk, nobody holds the lock
    assert (s.done, s.total) == (3, 9)


def test_second_scan_reports_no_change_and_sees_new_things(store) -> None:
    run = make_sweep_run(store, ks=[0])
    poller = RunPoller(store)
    poller.scan()
    assert poller.scan()[1] is False
    run.append_event("progress", done=5, total=9)
    rows, changed = poller.scan()
    assert changed and rows[0].done == 5
    other = make_analysis_run(store, seed=3)
    rows, changed = poller.scan()
    assert changed and {r.id for r in rows} == {run.id, other.id}
    import shutil

    shutil.rmtree(other.path)
    rows, changed = poller.scan()
    assert changed and [r.id for r in rows] == [run.id]


def test_eta_from_the_workers_own_pace(store) -> None:
    run = make_sweep_run(store, ks=[0], status="queued")
    poller = RunPoller(store)
    poller.scan()
    append_jsonl(run.path / "events.jsonl", {"t": 90.0, "type": "status", "status": "running"})
    for done, t in ((10, 100.0), (20, 110.0)):
        append_jsonl(
            run.path / "events.jsonl", {"t": t, "type": "progress", "done": done, "total": 100}
        )
    tracked = poller._tracked[run.id]  # noqa: SLF001 - the ETA is not shown unless running
    poller.scan()
    assert tracked.eta_s == pytest.approx(80.0)  # 10 samples per 10 s, 80 to go


def test_details_are_incremental(store, monkeypatch) -> None:
    run = make_sweep_run(store, ks=[0, 1])
    poller = RunPoller(store)
    poller.scan()
    poller.watch(run.id)
    first = poller.details()
    assert len(first) == 1 and first[0].reset and first[0].result_changed
    assert len(first[0].samples) == 20 * 3  # base + two k
    poller.scan()
    assert poller.details() == []  # nothing new on disk, no message

    # from now on, any full re-read of samples.jsonl is a bug
    def no_full_reads(*_a, **_k):
        raise AssertionError("samples were re-read in full")

    monkeypatch.setattr("cliffscope.store.run_dir.iter_jsonl", no_full_reads)
    append_jsonl(
        run.path / "samples.jsonl", {"key": "s-000000@2", "id": "s-000000", "k": 2, "score": 1.0}
    )
    with open(run.path / "samples.jsonl", "ab") as fh:
        fh.write(b'{"key": "s-000001@2", "id": "s-0')  # a line still being written
    poller.scan()
    (detail,) = poller.details()
    assert [s["key"] for s in detail.samples] == ["s-000000@2"]
    assert not detail.result_changed and not detail.reset
    result = run.result()
    result["points"].append(dict(result["points"][-1], k=2))
    run.write_result(result)
    os.utime(run.path / "result.json", ns=(1, 1))  # a distinct mtime even on coarse clocks
    poller.scan()
    (detail,) = poller.details()
    assert detail.result_changed and len(detail.result["points"]) == 3 and detail.samples == []


def test_samples_only_when_wanted(store) -> None:
    run = make_sweep_run(store, ks=[0])
    poller = RunPoller(store)
    poller.scan()
    poller.watch(run.id, samples=False)
    (first,) = poller.details()
    assert first.samples == [] and first.result_changed
    poller.want_samples(run.id)
    (second,) = poller.details()
    assert len(second.samples) == 40 and not second.result_changed


def test_unwatch_stops_details(store) -> None:
    run = make_sweep_run(store, ks=[0])
    poller = RunPoller(store)
    poller.scan()
    poller.watch(run.id)
    assert poller.details()
    poller.unwatch(run.id)
    run.append_event("log", message="hello")
    poller.scan()
    assert poller.details() == []


def test_chunked_tail_reads_big_files_in_slices(tmp_path) -> None:
    from cliffscope.tui.tails import ChunkedTail

    path = tmp_path / "samples.jsonl"
    lines = [
        {"key": f"s{i}", "id": f"s{i}", "mass": {"image": [0.1] * 32}, "score": 1.0}
        for i in range(300)
    ]
    path.write_text("".join(__import__("json").dumps(line) + "\n" for line in lines))
    with open(path, "ab") as fh:
        fh.write(b'{"key": "torn')  # a line still being written
    tail = ChunkedTail(path, max_bytes=4096)
    got = []
    while True:
        batch = tail.read_new()
        assert len(batch) < 300  # never all at once
        got.extend(batch)
        if not tail.behind:
            break
    assert [r["key"] for r in got] == [f"s{i}" for i in range(300)]
    assert got[0]["score"] == 1.0
    groups, values = got[0]["mass"]  # the JSON arrays became one small float16 table
    assert groups == ("image",) and values.dtype.name == "float16" and values.shape == (1, 32)
    assert "density" not in got[0]
    with open(path, "ab") as fh:
        fh.write(b'", "id": "t"}\n')
    assert [r["key"] for r in tail.read_new()] == ["torn"]


def test_slim_keeps_masses_compact_and_drops_ragged_ones() -> None:
    from cliffscope.tui.tails import slim

    line = {"id": "a", "mass": {"image": [0.5, 0.25], "system": [0.5, 0.75]}, "density": {}}
    groups, values = slim(line)["mass"]
    assert groups == ("image", "system") and values.tolist() == [[0.5, 0.25], [0.5, 0.75]]
    ragged = slim({"id": "b", "mass": {"image": [0.5], "system": [0.5, 0.75]}})
    assert "mass" not in ragged and ragged["id"] == "b"
    plain = {"id": "c", "k": 3, "prediction": "red"}
    assert slim(plain) is plain  # sweep lines pass untouched


def test_first_scan_can_stop_at_the_newest_runs(store) -> None:
    for seed in range(5):
        make_sweep_run(store, seed=seed, ks=[0])
    poller = RunPoller(store)
    rows, _ = poller.scan(limit=2)
    newest = sorted((p.name for p in store.root.iterdir()), reverse=True)
    assert [r.id for r in rows] == newest[:2]
    rows, changed = poller.scan()
    assert changed and len(rows) == 5

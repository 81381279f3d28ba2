"""Run store contract: atomic files, torn lines, interrupted detection, locks, safe names."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from cliffscope.errors import NotFoundError, RunLockedError, ValidationError
from cliffscope.store import RunStatus, RunStore
from cliffscope.store import lock as run_lock
from cliffscope.store.atomic import atomic_write_json
from cliffscope.store.jsonl import JsonlTail, JsonlWriter, iter_jsonl
from cliffscope.store.run_id import new_run_id


def make_run(store: RunStore, kind: str = "sweep"):
    return store.create(
        kind=kind,
        profile={"name": "demo", "model": "builtin:demo"},
        task={"name": "shapes-vqa"},
        params={"mode": "drop"},
        subset={"limit": 3, "seed": 0, "ids": ["a", "b", "c"], "hash": "sha256:x"},
    )


def test_run_ids_sort_by_time_and_say_what_they_are() -> None:
    from datetime import datetime, timezone

    a = new_run_id("sweep", "llava-1.5-7b", "vqav2", datetime(2026, 1, 2, tzinfo=timezone.utc))
    b = new_run_id("analysis", "demo", "shapes/vqa", datetime(2026, 1, 3, tzinfo=timezone.utc))
    assert a < b
    assert "sweep-llava-1.5-7b-vqav2" in a
    assert "/" not in b and ".." not in b


def test_create_and_read_back(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    run = make_run(store)
    assert run.status is RunStatus.QUEUED
    assert run.spec["profile"]["name"] == "demo"
    assert run.spec["subset"]["ids"] == ["a", "b", "c"]
    assert run.spec["versions"]["cliffscope"]
    assert [r.id for r in store.list()] == [run.id]
    assert store.get(run.id[-4:]).id == run.id  # unique suffix lookup


@pytest.mark.parametrize(
    "bad", ["../x", "/etc", "a/b", "..", ".hidden", "", "a" * 200, "run\n", "a\x00b", "~root"]
)
def test_run_names_cannot_escape(tmp_path: Path, bad: str) -> None:
    store = RunStore(tmp_path)
    with pytest.raises((ValidationError, NotFoundError)):
        store.get(bad)
    with pytest.raises(ValidationError):
        store.path_of(bad)


def test_torn_last_line_is_ignored_and_repaired(tmp_path: Path) -> None:
    path = tmp_path / "samples.jsonl"
    with JsonlWriter(path) as w:
        w.write({"key": "a", "id": "a", "score": 1.0})
        w.write({"key": "b", "id": "b", "score": 0.0})
    with open(path, "ab") as fh:
        fh.write(b'{"key": "c", "id": "c", "sc')  # crash mid-append
    assert [r["key"] for r in iter_jsonl(path)] == ["a", "b"]
    with JsonlWriter(path) as w:  # a resumed writer cuts the torn tail first
        w.write({"key": "c", "id": "c", "score": 1.0})
    assert [r["key"] for r in iter_jsonl(path)] == ["a", "b", "c"]


def test_tail_reads_only_new_complete_lines(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    tail = JsonlTail(path)
    assert tail.read_new() == []
    with open(path, "ab") as fh:
        fh.write(b'{"n": 1}\n{"n": 2')
    assert tail.read_new() == [{"n": 1}]
    with open(path, "ab") as fh:
        fh.write(b'}\n{"n": 3}\n')
    assert tail.read_new() == [{"n": 2}, {"n": 3}]
    assert tail.read_new() == []


def test_bounded_tail_takes_a_line_longer_than_its_limit_whole(tmp_path: Path) -> None:
    path = tmp_path / "samples.jsonl"
    long = {"key": "long", "pad": "x" * 200}
    path.write_text(json.dumps(long) + "\n" + '{"key": "short"}\n')
    tail = JsonlTail(path, max_bytes=16)
    assert tail.read_new() == [long, {"key": "short"}]  # the rest of the file, not stuck
    assert not tail.behind and tail.read_new() == []


def test_atomic_json_never_half_written(tmp_path: Path) -> None:
    target = tmp_path / "result.json"
    atomic_write_json(target, {"a": float("nan"), "b": [1.0, float("inf")]})
    assert json.loads(target.read_text()) == {"a": None, "b": [1.0, None]}
    assert not list(tmp_path.glob(".*tmp"))


def test_lock_is_exclusive_and_released(tmp_path: Path) -> None:
    run = make_run(RunStore(tmp_path))
    lock = run_lock.acquire(run.path)
    assert run.is_locked()
    with pytest.raises(RunLockedError) as err:
        run_lock.acquire(run.path)
    assert str(os.getpid()) in err.value.what
    lock.release()
    assert not run.is_locked()


WRITER = textwrap.dedent(
    """
    import sys, time
    from cliffscope.store import RunDir
    from cliffscope.store import lock as run_lock
    from cliffscope.store.jsonl import JsonlWriter
    run = RunDir(sys.argv[1])
    lock = run_lock.acquire(run.path)
    run.set_status("running")
    with JsonlWriter(run.path / "samples.jsonl") as w:
        for i in range(10_000):
            w.write({"key": f"s{i}", "id": f"s{i}", "payload": "x" * 200})
            if i == 20:
                print("ready", flush=True)
            time.sleep(0.001)
    """
)


def test_killed_writer_reads_as_interrupted(tmp_path: Path) -> None:
    """A writer killed mid-append: `runs list` says interrupted and every file still reads."""
    store = RunStore(tmp_path)
    run = make_run(store)
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(run.path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "ready"
    assert run.status is RunStatus.RUNNING
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # simulate the worst case: the kill landed in the middle of a line
    with open(run.path / "samples.jsonl", "ab") as fh:
        fh.write(b'{"key": "torn", "id')
    time.sleep(0.05)
    assert run.status is RunStatus.INTERRUPTED
    samples = run.samples()
    assert len(samples) >= 21 and all(s["key"] != "torn" for s in samples)

    from click.testing import CliRunner

    from cliffscope.cli.main import cli

    result = CliRunner().invoke(cli, ["--runs-dir", str(tmp_path), "runs", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert rows[0]["status"] == "interrupted"


def test_newer_schema_is_reported_not_misread(tmp_path: Path) -> None:
    run = make_run(RunStore(tmp_path))
    text = (run.path / "run.toml").read_text().replace("schema_version = 1", "schema_version = 99")
    (run.path / "run.toml").write_text(text)
    run = RunStore(tmp_path).get(run.id)
    assert run.status is RunStatus.UNREADABLE
    assert "schema_version 99" in (run.problem or "")


def test_corrupt_result_reads_as_absent(tmp_path: Path) -> None:
    run = make_run(RunStore(tmp_path))
    (run.path / "result.json").write_text('{"kind": "sweep", "poi')
    assert run.result() is None
    assert "result.json" in (run.problem or "")


def test_big_subset_run_toml_is_quick(tmp_path: Path) -> None:
    """50,000 sample ids in run.toml: written and status-updated in well under a second each."""
    store = RunStore(tmp_path)
    ids = [f"s-{i:06d}" for i in range(50_000)]
    start = time.perf_counter()
    run = store.create("sweep", {"name": "demo"}, {"name": "t"}, {}, {"ids": ids, "hash": "h"})
    run.set_status("running")
    assert time.perf_counter() - start < 5.0
    assert RunStore(tmp_path).get(run.id).spec["subset"]["ids"][-1] == "s-049999"

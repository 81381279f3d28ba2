"""Bad input gets a clear message, never a traceback, and never costs finished work.

Extends `test_fuzz_inputs.py` (fuzzed profiles, byte-garbage run dirs) and `test_store.py`
(torn lines, newer schema) with: fuzzed task files; profiles with an unknown family or dtype
through the CLI; run.toml files that parse but hold the wrong types (one such run must not hide
the others from `runs list` or the dashboard); the dashboard on a store of broken runs. Odd
dataset rows and images are in `test_reliability_data.py`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tomlkit
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cliffscope.cli.main import cli
from cliffscope.cli.runs_cmd import summary
from cliffscope.errors import CliffscopeError
from cliffscope.store import RunStatus, RunStore
from cliffscope.tasks.registry import get_task
from tests.fake_runs import make_sweep_run
from tests.test_reliability_support import write_profile

FUZZ = settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
ANY = st.one_of(
    st.none(),
    st.integers(-3, 10**9),
    st.booleans(),
    st.floats(allow_nan=False),
    st.text(max_size=10),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.sampled_from(["ids", "name", "x"]), st.integers(), max_size=2),
)


def _no_none(value):
    if isinstance(value, dict):
        return {k: _no_none(v) for k, v in value.items() if v is not None}
    return value


def _dump(data: dict) -> str:
    """TOML text for `data` (TOML has no null: None values are left out, as writers do)."""
    return tomlkit.dumps(_no_none(data))


# ---- task files ------------------------------------------------------------------------
TASK_KEYS = [
    "name",
    "base",
    "description",
    "source",
    "hub_id",
    "split",
    "data_path",
    "image_dir",
    "columns",
    "filters",
    "prompt_template",
    "answer_kind",
    "metric",
    "max_new_tokens",
    "shapes",
    "pool_size",
    "bogus",
]


@FUZZ
@given(st.dictionaries(st.sampled_from(TASK_KEYS), ANY, max_size=6), st.booleans())
def test_fuzzed_task_files_fail_with_located_errors(tmp_path: Path, data: dict, based: bool):
    path = tmp_path / "fuzz.toml"
    if based:
        data = {"base": "shapes-vqa", **data}
    path.write_text(_dump(data))
    try:
        task = get_task(str(path))
    except CliffscopeError as exc:
        assert "Traceback" not in exc.render()
        assert exc.where is not None and exc.where.path == str(path), exc.render()
    else:
        assert task.spec.name


@FUZZ
@given(st.binary(max_size=150))
def test_garbage_task_files(tmp_path: Path, blob: bytes) -> None:
    path = tmp_path / "garbage.toml"
    path.write_bytes(blob)
    try:
        get_task(str(path))
    except CliffscopeError as exc:
        assert exc.where is not None and exc.where.path == str(path)


# ---- profiles and tasks through the CLI ---------------------------------------------------
def run_main(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str]:
    """`cliffscope ARGS` in-process, through `main()` (which renders errors): (code, output)."""
    from cliffscope.cli.main import main

    with pytest.raises(SystemExit) as exit_:
        main(list(args))
    captured = capsys.readouterr()
    return int(exit_.value.code or 0), captured.out + captured.err


@pytest.mark.parametrize(
    ("line", "key", "words"),
    [
        ('family = "gpt-5"', "family", "llava"),  # the message lists the known families
        ('dtype = "float8"', "dtype", "bfloat16"),
        ("batch_size = 0", "batch_size", "greater than"),
        ("bacth_size = 4", "bacth_size", "bacth_size"),
        ('trust_remote_code = "yes"', "trust_remote_code", "trust_remote_code"),
    ],
)
def test_bad_profile_is_refused_before_any_run_exists(
    tmp_path: Path, capsys, line: str, key: str, words: str
) -> None:
    profiles, runs = tmp_path / "profiles", tmp_path / "runs"
    path = write_profile(profiles, tmp_path / "model")
    text = path.read_text()
    field = line.split(" =")[0]
    kept = [x for x in text.splitlines() if not x.startswith(f"{field} =")]
    path.write_text("\n".join([*kept, line]) + "\n")
    number = len(kept) + 1
    code, text = run_main(
        capsys,
        "--runs-dir",
        str(runs),
        "--profiles-dir",
        str(profiles),
        "analyze",
        "-p",
        "tiny",
        "-t",
        "shapes-vqa",
        "--limit",
        "2",
    )
    assert code == 1, text
    assert f"{path}:{number}" in text and f"key '{key}'" in text, text
    assert words in text and "Traceback" not in text
    assert not runs.exists() or not list(runs.iterdir())


def test_bad_task_file_is_refused_before_any_run_exists(tmp_path: Path, capsys) -> None:
    profiles, runs = tmp_path / "profiles", tmp_path / "runs"
    write_profile(profiles, tmp_path / "model")
    task = tmp_path / "bad-task.toml"
    task.write_text('base = "shapes-vqa"\nmetric = 3\n')
    code, text = run_main(
        capsys,
        "--runs-dir",
        str(runs),
        "--profiles-dir",
        str(profiles),
        "sweep",
        "-p",
        "tiny",
        "-t",
        str(task),
    )
    assert code == 1 and f"{task}:2" in text and "key 'metric'" in text, text
    assert not runs.exists() or not list(runs.iterdir())


# ---- run.toml that parses but lies about its types ------------------------------------------
SPEC_KEYS = [
    "schema_version",
    "kind",
    "status",
    "created",
    "started",
    "worker_pid",
    "error",
    "hint",
    "profile",
    "task",
    "params",
    "subset",
]


@FUZZ
@given(
    st.dictionaries(st.sampled_from(SPEC_KEYS), ANY, max_size=5),
    st.dictionaries(st.sampled_from(["ids", "limit", "hash"]), ANY, max_size=2),
    st.dictionaries(st.sampled_from(["done", "total", "t", "type"]), ANY, max_size=3),
)
def test_wrong_typed_run_toml_never_hides_other_runs(
    tmp_path: Path, top: dict, subset: dict, progress: dict
) -> None:
    from cliffscope.tui.poller import RunPoller

    root = tmp_path / "runs"
    store = RunStore(root)
    bad = root / "20990101-000000-sweep-x-y-bad0"
    if not store.list():
        make_sweep_run(store, seed=1, n_samples=4, ks=[0])
    good = next(run.id for run in store.list() if run.id != bad.name)
    bad.mkdir(exist_ok=True)
    spec = {"kind": "sweep", "status": "running", "subset": {"ids": ["a"], **subset}, **top}
    (bad / "run.toml").write_text(_dump(spec))
    (bad / "events.jsonl").write_text(json.dumps({"type": "progress", **progress}) + "\n")

    rows = {row["id"]: row for row in (summary(run) for run in store.list())}
    assert rows[good]["status"] == "done" and bad.name in rows
    assert rows[bad.name]["status"] in {s.value for s in RunStatus}
    scanned, _ = RunPoller(store).scan()
    assert {r.id for r in scanned} == {good, bad.name}
    listed = CliRunner().invoke(cli, ["--runs-dir", str(root), "runs", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    assert {r["id"] for r in json.loads(listed.output)} == {good, bad.name}
    shown = CliRunner().invoke(cli, ["--runs-dir", str(root), "runs", "show", bad.name])
    assert shown.exit_code == 0 and "Traceback" not in shown.output, shown.output


# ---- the dashboard on a store of broken runs -------------------------------------------
BROKEN = {
    "torn-toml": b'kind = "sweep"\nstatus = "runn',
    "newer-schema": b'schema_version = 99\nkind = "sweep"\nstatus = "done"\n',
    "binary": bytes(range(256)),
    "wrong-types": b'kind = "analysis"\nstatus = "done"\nsubset = "all"\nprofile = 3\n',
    "odd-status": b'kind = "sweep"\nstatus = "exploded"\n',
}


@pytest.mark.slow
async def test_dashboard_survives_a_store_of_broken_runs(tmp_path: Path) -> None:
    from cliffscope.tui.capture import screen_text
    from cliffscope.tui.screens.run_view import RunViewScreen
    from tests.test_tui_support import make_app, wait_for

    root = tmp_path / "runs"
    store = RunStore(root)
    good = make_sweep_run(store, seed=2)
    for i, (name, blob) in enumerate(BROKEN.items()):
        path = root / f"2099010{i}-000000-sweep-{name}-0000"
        path.mkdir()
        (path / "run.toml").write_bytes(blob)
        (path / "result.json").write_bytes(b'{"kind": "sweep", "points": [{"k": "x"')
        (path / "samples.jsonl").write_bytes(b'{"key": "a@0", "id": "a", "k": 0}\n{"key": ')
        (path / "events.jsonl").write_bytes(b'{"type": "progress", "done": "many"}\n\xff\xfe\n')
    bare = make_sweep_run(store, seed=3)  # a valid run.toml, every other file gone
    for name in ("samples.jsonl", "events.jsonl", "result.json"):
        (bare.path / name).unlink()
    (root / "no-run-toml").mkdir()
    (root / "no-run-toml" / "samples.jsonl").write_text("{}\n")
    app = make_app(root)
    async with app.run_test(size=(160, 40)) as pilot:
        await wait_for(pilot, lambda: app.loaded and len(app.runs) == 2 + len(BROKEN))
        assert app.row(good.id).status == "done" and app.row(bare.id).status == "done"
        for row in app.runs:
            if row.id == good.id:
                continue
            assert row.id == bare.id or (row.status == "unreadable" and row.problem), row
            app.open_run(row.id)
            await wait_for(pilot, lambda: isinstance(app.screen, RunViewScreen))
            for key in "12345":
                await pilot.press(key)
            await pilot.pause(0.1)
            assert row.id in screen_text(app)
            await pilot.press("escape")
            await wait_for(pilot, lambda: not isinstance(app.screen, RunViewScreen))
        app.screen.select_run(good.id)
        await wait_for(pilot, lambda: good.id in screen_text(app), what="the good run")

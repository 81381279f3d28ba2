"""Bad input never escapes as a traceback: fuzzed profiles and corrupt run directories."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cliffscope.cli.main import cli
from cliffscope.errors import CliffscopeError
from cliffscope.profiles import load_profile
from cliffscope.store import RunStatus, RunStore

KEYS = [
    "name",
    "model",
    "family",
    "dtype",
    "batch_size",
    "device_map",
    "max_memory",
    "trust_remote_code",
    "revision",
    "bogus",
    "max_new_tokens",
    "system_prompt",
]
VALUES = st.one_of(
    st.integers(-5, 10**6),
    st.booleans(),
    st.text(max_size=12),
    st.floats(allow_nan=False),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(min_size=1, max_size=4), st.integers(), max_size=2),
)
FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _toml_value(value) -> str:
    import tomlkit

    if isinstance(value, dict):
        table = tomlkit.inline_table()
        table.update(value)
        return table.as_string()
    return tomlkit.item(value).as_string()


@FUZZ
@given(st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=8))
def test_wrong_typed_profiles_give_located_errors(tmp_path: Path, data: dict) -> None:
    path = tmp_path / "fuzz.toml"
    path.write_text("\n".join(f"{k} = {_toml_value(v)}" for k, v in data.items()) + "\n")
    try:
        load_profile(path)
    except CliffscopeError as exc:
        assert exc.where is not None and exc.where.path == str(path)
        assert "Traceback" not in exc.render()


@FUZZ
@given(st.binary(max_size=200))
def test_garbage_profile_bytes(tmp_path: Path, blob: bytes) -> None:
    path = tmp_path / "garbage.toml"
    path.write_bytes(blob)
    with contextlib.suppress(CliffscopeError):
        load_profile(path)


@FUZZ
@given(
    run_toml=st.one_of(
        st.binary(max_size=120),
        st.just(b'schema_version = 7\nstatus = "running"\n'),
        st.just(b'status = "exploded"\nkind = "sweep"\n'),
    ),
    result=st.one_of(st.binary(max_size=120), st.just(b"[1, 2]"), st.just(b'{"kind": "sweep"}')),
    samples=st.binary(max_size=200),
)
def test_corrupt_run_dirs_never_crash_readers(
    tmp_path: Path, run_toml: bytes, result: bytes, samples: bytes
) -> None:
    root = tmp_path / "runs"
    run_dir = root / "20260101-000000-sweep-x-y-0000"
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "run.toml").write_bytes(run_toml)
    (run_dir / "result.json").write_bytes(result)
    (run_dir / "samples.jsonl").write_bytes(samples)
    (run_dir / "events.jsonl").write_bytes(samples)
    store = RunStore(root)
    for run in store.list():
        assert isinstance(run.status, RunStatus)
        run.result()
        run.samples()
        run.progress()
    out = CliRunner().invoke(cli, ["--runs-dir", str(root), "runs", "list", "--json"])
    assert out.exit_code == 0, out.output
    json.loads(out.output)
    shown = CliRunner().invoke(cli, ["--runs-dir", str(root), "runs", "show", run_dir.name])
    assert shown.exit_code == 0, shown.output

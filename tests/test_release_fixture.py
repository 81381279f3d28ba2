"""Runs written by the previous release (cliffscope 0.1.0) open, resume and export the same.

`tests/fixtures/release-0.1.0/` holds real run directories made with the 0.1.0 code before the
run kinds became plugins (`cliffscope analyze|sweep --profile demo4 --task shapes-vqa --limit
12`, demo4 = the demo profile with batch_size 4): `done/` two finished runs, `interrupted/`
the same two commands stopped by `CLIFFSCOPE_FAULT=error@batch:2` after one batch, and
`expected/` what 0.1.0 printed and exported for the finished ones (`{store}` stands for the
run store's path; `files.txt` lists every exported file, figures included).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from cliffscope.cli.main import cli
from cliffscope.store import RunDir, RunStore
from tests.test_reliability_support import assert_same, comparable

FIXTURE = Path(__file__).parent / "fixtures" / "release-0.1.0"
EXPECTED = FIXTURE / "expected"
ANALYSIS = "20261202-003318-analysis-demo4-shapes-vqa-5b6d"
SWEEP = "20261202-003351-sweep-demo4-shapes-vqa-23bd"
INTERRUPTED = {
    "analysis": "20261202-003336-analysis-demo4-shapes-vqa-03d6",
    "sweep": "20261202-003413-sweep-demo4-shapes-vqa-dc1a",
}
DONE = {"analysis": ANALYSIS, "sweep": SWEEP}
# 0.1.0 resampled analysis intervals with another scheme than sweep intervals; today one
# bootstrap serves both (the sweep's), so an analysis re-aggregated now has other interval
# ends for the same lines. Everything else must be equal.
BOOTSTRAP_FIELDS = {"lo", "hi", "no_collapse_fraction", "reason"}


@pytest.fixture
def store(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    shutil.copytree(FIXTURE / "done", root)
    return root


def _cli(root: Path, *args: str, width: int = 200) -> str:
    env = {"COLUMNS": str(width)}
    out = CliRunner(env=env).invoke(cli, ["--runs-dir", str(root), *args])
    assert out.exit_code == 0, out.output
    return out.output


def _expected(name: str, root: Path) -> str:
    return (EXPECTED / name).read_text(encoding="utf-8").replace("{store}", str(root))


def _without_paths(obj):
    """Profile snapshots name the profile file they came from; drop that one path."""
    if isinstance(obj, dict):
        return {k: _without_paths(v) for k, v in obj.items() if k != "source"}
    if isinstance(obj, list):
        return [_without_paths(v) for v in obj]
    return obj


# What later releases add to the same old runs' output, and nothing else may differ: the third
# cliff estimate (attention knockout, issue 17) as a row of every report's cliff table, its
# definition, a column of compare tables; and `runs show` lists every cliff estimate it finds
# (0.1.0 printed only the partner's, in another layout), checked on its own below.
KNOCKOUT_ROW = re.compile(r"^\| attention knockout \|.*\n", re.M)
KNOCKOUT_DEFINITION = re.compile(r" The knockout cliff is [^\n]*")
ESTIMATE_LINES = re.compile(r"^  (flow|sweep|knockout) cliff .*\n", re.M)


def _without_column(text: str, header: str) -> str:
    """`text` with every Markdown table column headed `header` taken out."""
    out, drop = [], None
    for line in text.splitlines(keepends=True):
        if not line.startswith("|"):
            drop = None
        elif drop is None:  # a table's header row
            cells = line.split("|")
            drop = {i for i, cell in enumerate(cells) if cell.strip() == header}
        if drop:
            line = "|".join(c for i, c in enumerate(line.split("|")) if i not in drop)
        out.append(line)
    return "".join(out)


def _since_0_1_0(text: str, suffix: str) -> str:
    """`text` (a report file) without what releases after 0.1.0 add to it (above): in data
    files the knockout cliff's columns and keys."""
    if suffix == ".md":
        text = KNOCKOUT_DEFINITION.sub("", KNOCKOUT_ROW.sub("", text))
        return _without_column(text, "knockout cliff (depth)")
    if suffix == ".json":
        return json.dumps(_without_knockout(json.loads(text)), indent=1)
    if suffix == ".csv":
        rows = list(csv.reader(io.StringIO(text)))
        keep = [i for i, name in enumerate(rows[0] if rows else []) if "knockout" not in name]
        return "\n".join(",".join(row[i] for i in keep if i < len(row)) for row in rows)
    return text


def _without_knockout(obj):
    if isinstance(obj, dict):
        return {k: _without_knockout(v) for k, v in obj.items() if "knockout" not in k}
    if isinstance(obj, list):
        return [_without_knockout(v) for v in obj if v != "knockout"]
    return obj


def test_old_runs_list_and_show_as_before(store: Path) -> None:
    listed = json.loads(_cli(store, "runs", "list", "--json"))
    assert listed == json.loads(_expected("list.json", store))
    for run_id in (ANALYSIS, SWEEP):
        tail = run_id.split("-", 2)[2]
        shown = _cli(store, "runs", "show", run_id)
        want = _expected(f"show-{tail}.txt", store)
        assert ESTIMATE_LINES.sub("", shown) == ESTIMATE_LINES.sub("", want)
        assert re.search(
            rf"^  flow cliff +no-collapse +\(attention flow, {ANALYSIS}\)$", shown, re.M
        )
        assert re.search(rf"^  sweep cliff +2 +\(truncation sweep, {SWEEP}\)$", shown, re.M)
        got = json.loads(_cli(store, "runs", "show", run_id, "--json"))
        want = json.loads(_expected(f"show-{tail}.json", store))
        assert _without_paths(got) == _without_paths(want)


@pytest.mark.parametrize(
    ("runs", "folder"),
    [
        ((ANALYSIS,), "export-analysis"),
        ((SWEEP,), "export-sweep"),
        ((ANALYSIS, SWEEP), "export-both"),
    ],
)
def test_old_runs_export_the_same_files_and_text(store: Path, tmp_path: Path, runs, folder) -> None:
    out = tmp_path / "report"
    _cli(store, "export", *runs, "--format", "all", "-o", str(out))
    files = sorted(f"./{folder}/{p.relative_to(out)}" for p in out.rglob("*") if p.is_file())
    listed = (EXPECTED / "files.txt").read_text().split()
    assert files == sorted(f for f in listed if f.startswith(f"./{folder}/"))
    for path in (EXPECTED / folder).rglob("*"):
        if path.is_file():
            rel = path.relative_to(EXPECTED / folder)
            got = _since_0_1_0((out / rel).read_text(encoding="utf-8"), rel.suffix)
            want = _since_0_1_0(path.read_text(encoding="utf-8"), rel.suffix)
            assert got == want, f"{folder}/{rel} differs"


def _volatile_free(result: dict, kind: str) -> dict:
    out = comparable(result)  # drops timings and the update time
    if kind == "analysis":
        out = _drop_bootstrap(out)
    return out


def _drop_bootstrap(obj):
    if isinstance(obj, dict):
        return {
            k: _drop_bootstrap(v)
            for k, v in obj.items()
            if k not in BOOTSTRAP_FIELDS and k != "params"
        }
    if isinstance(obj, list):
        return [_drop_bootstrap(v) for v in obj]
    return obj


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["analysis", "sweep"])
def test_an_interrupted_old_run_resumes_to_the_finished_one(tmp_path: Path, kind: str) -> None:
    root = tmp_path / "runs"
    shutil.copytree(FIXTURE / "interrupted", root)
    # the finished analysis beside it: a sweep records the flow cliff of its partner
    shutil.copytree(FIXTURE / "done" / ANALYSIS, root / ANALYSIS)
    run_id = INTERRUPTED[kind]
    before = {str(r["key"]): r for r in RunDir(root / run_id).samples()}
    env = {**os.environ, "COLUMNS": "120"}
    out = CliRunner(env=env).invoke(cli, ["--runs-dir", str(root), "runs", "resume", run_id])
    assert out.exit_code == 0, out.output
    run = RunStore(root).get(run_id)
    assert run.status.value == "done"
    done = RunDir(FIXTURE / "done" / DONE[kind])
    lines = {str(r["key"]): r for r in run.samples()}
    assert {k: lines[k] for k in before} == before  # finished samples were kept, not redone
    assert_same(
        {k: comparable(v) for k, v in lines.items()},
        {str(r["key"]): comparable(r) for r in done.samples()},
        "samples",
    )
    got, want = run.result(), done.result()
    assert got["complete"] is True
    assert_same(_volatile_free(got, kind), _volatile_free(want, kind))

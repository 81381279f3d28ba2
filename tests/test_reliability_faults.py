"""Worker failures: an exception, a CUDA out-of-memory error, a missing model path, an
unreachable hub. Each run ends `failed` with the error and a hint (in run.toml and as an error
event with the traceback), keeps every finished sample and a partial result, leaves the other
runs of the store alone, shows in the dashboard, and — once the cause is fixed — `resume`
finishes it with the result of an uninterrupted run.

Failures inside the job loop are injected with `CLIFFSCOPE_FAULT` (see
`JobContext.fault_point`); the worker runs in-process (`run_worker`), which is the same code a
detached worker runs, minus the interpreter start.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from cliffscope.cli.main import cli
from cliffscope.store import RunDir, RunStatus, RunStore
from cliffscope.worker.launch import mark_resumable
from cliffscope.worker.runner import run_worker
from tests.fake_runs import make_sweep_run
from tests.test_reliability_support import (
    LINES_PER_SAMPLE,
    assert_same_as_reference,
    count_lines,
    make_run,
    write_profile,
)

HUB_MODEL = "cliffscope-test/no-such-model"


@pytest.fixture
def dirs(tmp_path: Path, tiny_llava_path: Path) -> tuple[Path, Path]:
    profiles = tmp_path / "profiles"
    write_profile(profiles, tiny_llava_path)
    write_profile(profiles, tmp_path / "moved-model", name="moved")  # not there (yet)
    write_profile(profiles, HUB_MODEL, name="hub")
    return tmp_path / "runs", profiles


@pytest.fixture
def offline_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    """No hub here or in CI: offline mode makes "unreachable" instant instead of 30 s of
    retries, through the same error path (`from_pretrained` raises OSError)."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def fail(run: RunDir, monkeypatch: pytest.MonkeyPatch, fault: str | None = None) -> dict:
    """Run the worker with `fault` injected; it must fail. Returns the error event."""
    if fault:
        monkeypatch.setenv("CLIFFSCOPE_FAULT", fault)
    assert run_worker(run.path) == 1
    monkeypatch.delenv("CLIFFSCOPE_FAULT", raising=False)
    assert run.status is RunStatus.FAILED and not run.is_locked()
    errors = [e for e in run.events() if e.get("type") == "error"]
    assert len(errors) == 1
    spec = run.read_spec()
    assert spec["error"] == errors[0]["message"] and spec["hint"] == errors[0]["hint"]
    assert errors[0]["traceback"].startswith("Traceback")
    return errors[0]


def snapshot_files(run: RunDir) -> dict[str, bytes]:
    return {
        str(p.relative_to(run.path)): p.read_bytes() for p in run.path.rglob("*") if p.is_file()
    }


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "fault", "message", "hint"),
    [
        ("sweep", "oom@batch:2", "OutOfMemoryError: CUDA out of memory", "batch_size"),
        ("analysis", "oom@batch:2", "OutOfMemoryError: CUDA out of memory", "batch_size"),
        ("analysis", "error@batch:3", "RuntimeError: injected failure", "runs resume"),
    ],
)
def test_failure_mid_run_keeps_samples_and_resume_finishes(
    dirs, tiny_llava_path: Path, monkeypatch, kind: str, fault: str, message: str, hint: str
) -> None:
    runs, profiles = dirs
    bystander = make_sweep_run(RunStore(runs), seed=7)
    untouched = snapshot_files(bystander)
    run = make_run(runs, profiles, kind)
    error = fail(run, monkeypatch, fault)
    assert error["message"].startswith(message) and hint in error["hint"]
    finished_batches = int(fault.rsplit(":", 1)[1]) - 1
    assert count_lines(run) == finished_batches * 2 * LINES_PER_SAMPLE[kind]
    partial = run.result()
    assert partial["complete"] is False and partial["n_samples"] == finished_batches * 2

    shown = CliRunner().invoke(cli, ["--runs-dir", str(runs), "runs", "show", run.id])
    assert shown.exit_code == 0 and "failed" in shown.output
    assert message in shown.output and hint in shown.output.replace("\n", " ")

    mark_resumable(run)  # the cause went away (memory freed, bug fixed)
    assert run_worker(run.path) == 0
    assert_same_as_reference(run, kind, tiny_llava_path)
    assert snapshot_files(bystander) == untouched and bystander.status is RunStatus.DONE


@pytest.mark.slow
def test_oom_hint_is_followable(dirs, monkeypatch) -> None:
    """After an OOM the hint says where to lower batch_size for this run; doing exactly that
    and resuming continues with the smaller batches (progress steps of one sample)."""
    runs, profiles = dirs
    run = make_run(runs, profiles, "analysis")
    error = fail(run, monkeypatch, "oom@batch:2")
    assert "run.toml" in error["hint"] and "batch_size" in error["hint"]
    spec = run.read_spec()
    run.update_spec(profile={**spec["profile"], "batch_size": 1})  # what the hint asks for
    mark_resumable(run)
    assert run_worker(run.path) == 0
    events = run.events()
    last_start = max(i for i, e in enumerate(events) if e.get("status") == "running")
    done = [e["done"] for e in events[last_start:] if e.get("type") == "progress"]
    assert done == [2, 3, 4, 5, 6, 7, 8]
    assert run.result()["complete"] is True


@pytest.mark.slow
def test_missing_model_path_fails_clearly_and_resumes_once_it_is_back(
    dirs, tiny_llava_path: Path, tmp_path: Path, monkeypatch
) -> None:
    runs, profiles = dirs
    run = make_run(runs, profiles, "sweep", profile="moved")
    error = fail(run, monkeypatch)
    assert "moved-model" in error["message"] and "does not exist" in error["message"]
    assert "local directory" in error["hint"]
    assert run.samples() == []
    (tmp_path / "moved-model").symlink_to(tiny_llava_path)  # the disk is mounted again
    mark_resumable(run)
    assert run_worker(run.path) == 0
    assert_same_as_reference(run, "sweep", tiny_llava_path)


def test_unreachable_hub_fails_clearly(tmp_path: Path, monkeypatch, offline_hub) -> None:
    runs, profiles = tmp_path / "runs", tmp_path / "profiles"
    write_profile(profiles, HUB_MODEL, name="hub")
    run = make_run(runs, profiles, "analysis", profile="hub")
    error = fail(run, monkeypatch)
    assert HUB_MODEL in error["message"] and "cannot load" in error["message"]
    assert "HF_HUB_OFFLINE" in error["hint"] and "local directory" in error["hint"]
    assert run.samples() == [] and run.result() is None


@pytest.mark.slow
async def test_dashboard_shows_each_failure_with_its_hint(dirs, monkeypatch, offline_hub) -> None:
    from cliffscope.tui.capture import screen_text
    from cliffscope.tui.screens.run_view import RunViewScreen
    from tests.test_tui_support import make_app, tab_key, wait_for

    runs, profiles = dirs
    failed = {
        "oom": (make_run(runs, profiles, "analysis"), "oom@batch:2", "CUDA out of memory"),
        "moved": (make_run(runs, profiles, "sweep", "moved"), None, "does not exist"),
        "hub": (make_run(runs, profiles, "analysis", "hub"), None, "cannot load the config"),
    }
    hints = {}
    for name, (run, fault, _) in failed.items():
        hints[name] = fail(run, monkeypatch, fault)["hint"]
    healthy = make_sweep_run(RunStore(runs), seed=5)
    app = make_app(runs, profiles)
    async with app.run_test(size=(200, 40)) as pilot:
        await wait_for(pilot, lambda: app.loaded and len(app.runs) == 4)
        assert app.row(healthy.id).status == "done" and not app.row(healthy.id).error
        for name, (run, _, words) in failed.items():
            row = app.row(run.id)
            assert row.status == "failed" and words in row.error and row.hint == hints[name]
            app.screen.select_run(run.id)
            await wait_for(pilot, lambda run=run: run.id in screen_text(app), what=name)
            await wait_for(pilot, lambda words=words: words in screen_text(app), what=name)
            app.open_run(run.id)
            await wait_for(pilot, lambda: isinstance(app.screen, RunViewScreen))
            await pilot.press(tab_key(app.screen, "log"))  # error, hint, end of the traceback
            await wait_for(pilot, lambda: "hint:" in screen_text(app), what=f"{name} log")
            text = screen_text(app)
            assert "error:" in text and hints[name][:40] in text
            await pilot.press("escape")
            await wait_for(pilot, lambda: not isinstance(app.screen, RunViewScreen))

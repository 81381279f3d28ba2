"""Security: run ids cannot reach outside the runs dir through any command, remote code is
off by default and visible when on, pickled weights are refused unless a profile allows them.

Covered elsewhere and not repeated here: names in the store API (`test_store.py::
test_run_names_cannot_escape`), profile names (`test_profiles.py::
test_profile_names_are_path_safe`), `trust_remote_code` reaching `from_pretrained` only when on
(`test_adapters_loading.py::test_default_kwargs_are_safe`, `::
test_profile_options_reach_from_pretrained`), Markdown escaping (`test_report_markdown.py`,
`test_report_export.py::test_dataset_text_is_escaped`, and the real-worker export in
`test_reliability_inputs.py`), sample ids as file names (same test).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cliffscope.errors import CliffscopeError
from cliffscope.profiles import Profile
from cliffscope.store import RunStore
from tests.fake_runs import make_analysis_run, make_sweep_run

COMMANDS = [  # (words before the run id, words after it)
    (["runs", "show"], []),
    (["runs", "cancel"], []),
    (["runs", "resume"], ["--detach"]),
    (["runs", "rm"], ["--yes"]),
    (["export"], ["--format", "json"]),
]


def run_main(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str]:
    from cliffscope.cli.main import main

    with pytest.raises(SystemExit) as exit_:
        main(list(args))
    captured = capsys.readouterr()
    return int(exit_.value.code or 0), captured.out + captured.err


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A real run directory *beside* the runs dir: what an escaping id would reach."""
    root = tmp_path / "elsewhere"
    make_sweep_run(RunStore(root), seed=4, status="running", ks=[0])
    return next(root.iterdir())


def files_of(path: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()
    }


@pytest.mark.parametrize(("command", "after"), COMMANDS, ids=lambda c: " ".join(c))
def test_no_command_takes_a_run_id_outside_the_runs_dir(
    tmp_path: Path, capsys, victim: Path, command: list[str], after: list[str]
) -> None:
    runs = tmp_path / "runs"
    make_analysis_run(RunStore(runs), seed=1)
    (runs / "link").symlink_to(victim, target_is_directory=True)  # a link out of the store
    before = files_of(victim)
    bad_ids = [
        f"../elsewhere/{victim.name}",
        "link",
        "..",
        "a/../../elsewhere",
        "/etc",
        "~",
    ]
    if command != ["export"]:  # export also reads a run dir named by its path, on purpose
        bad_ids.append(str(victim))
    for bad in bad_ids:
        code, text = run_main(capsys, "--runs-dir", str(runs), *command, bad, *after)
        assert code == 1, f"{command} {bad!r}: {text}"
        assert text.startswith("error:") and "Traceback" not in text, text
        assert "invalid run id" in text or "escapes" in text or "no run" in text, text
    assert files_of(victim) == before  # not cancelled, resumed, removed or exported into
    assert (runs / "link").is_symlink() and len(RunStore(runs).list()) == 2


def test_remote_code_is_off_by_default() -> None:
    profile = Profile(name="p", model="/models/x")
    assert profile.trust_remote_code is False and profile.use_safetensors is True


async def test_dashboard_flags_remote_code(tmp_path: Path) -> None:
    from cliffscope.tui.capture import screen_text
    from cliffscope.tui.screens.run_view import RunViewScreen
    from tests.test_tui_support import make_app, wait_for

    store = RunStore(tmp_path / "runs")
    plain = make_sweep_run(store, seed=1)
    remote = make_sweep_run(store, seed=2, profile="remote")
    spec = remote.read_spec()
    remote.update_spec(profile={**spec["profile"], "trust_remote_code": True})
    app = make_app(tmp_path / "runs")
    async with app.run_test(size=(160, 40)) as pilot:
        await wait_for(pilot, lambda: app.loaded and len(app.runs) == 2)
        assert app.row(remote.id).trust_remote_code and not app.row(plain.id).trust_remote_code
        app.screen.select_run(plain.id)
        await wait_for(pilot, lambda: plain.id in screen_text(app))
        assert "remote code ON" not in screen_text(app)
        app.screen.select_run(remote.id)
        await wait_for(pilot, lambda: "remote code ON" in screen_text(app), what="runs screen")
        app.open_run(remote.id)
        await wait_for(pilot, lambda: isinstance(app.screen, RunViewScreen))
        await wait_for(pilot, lambda: "remote code ON" in screen_text(app), what="run view")


@pytest.mark.slow
def test_pickled_weights_are_refused_unless_the_profile_allows_them(
    tmp_path: Path, tiny_llava_path: Path
) -> None:
    """A checkpoint with only `pytorch_model.bin` (pickle: can run code when loaded)."""
    import torch
    from safetensors.torch import load_file

    from cliffscope.models.loading import load_adapter
    from tests.tiny_models import tiny_profile

    pickled = tmp_path / "pickled"
    shutil.copytree(tiny_llava_path, pickled)
    weights = pickled / "model.safetensors"
    torch.save(load_file(weights), pickled / "pytorch_model.bin")
    weights.unlink()
    with pytest.raises(CliffscopeError) as err:
        load_adapter(tiny_profile(pickled, "llava"))
    assert "cannot load the weights" in err.value.what and err.value.where.key == "model"
    adapter = load_adapter(tiny_profile(pickled, "llava", use_safetensors=False))
    assert adapter.num_layers == 3

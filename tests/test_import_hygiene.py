"""The core, the CLI and the dashboard must start without torch/transformers (DESIGN.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.util import find_spec

import pytest

HEAVY = ("torch", "transformers", "accelerate", "datasets")
CORE = [
    "cliffscope",
    "cliffscope.cli.main",
    "cliffscope.cli.runs_cmd",
    "cliffscope.cli.profiles_cmd",
    "cliffscope.profiles",
    "cliffscope.store",
    "cliffscope.run_factory",
    "cliffscope.worker.launch",
    "cliffscope.tasks.registry",
    "cliffscope.metrics.registry",
    "cliffscope.aggregate.analysis",
    "cliffscope.aggregate.sweep",
    "cliffscope.report.export",
    "cliffscope.kinds.registry",
    "cliffscope.kinds.analysis",
    "cliffscope.kinds.sweep",
    "cliffscope.strategies.registry",
    "cliffscope.vocab",
    "cliffscope.runops",
    "cliffscope.cli.kind_cmd",
]
# Not the core: they may import torch (inside functions) or textual, and have contracts of
# their own in .importlinter; everything else in cliffscope/ is core there.
NOT_CORE = {
    "cli",
    "tui",
    "worker",
    "engines",
    "models",
    "demo",
    "strategies",
    "conformance",
    "__main__",
}


def _loaded_after_import(module: str) -> list[str]:
    code = (
        "import importlib, json, sys;"
        f"importlib.import_module({module!r});"
        "print(json.dumps(sorted(m.split('.')[0] for m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("module", CORE)
def test_core_imports_no_torch_or_textual(module: str) -> None:
    if find_spec(module) is None:
        pytest.fail(f"{module} is part of the core and must exist")
    loaded = set(_loaded_after_import(module))
    assert not loaded & set(HEAVY), f"{module} imported {sorted(loaded & set(HEAVY))}"
    assert "textual" not in loaded, f"{module} imported textual"


def test_dashboard_imports_no_torch() -> None:
    loaded = set(_loaded_after_import("cliffscope.tui.app"))
    assert "textual" in loaded
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_help_is_fast_and_light() -> None:
    code = (
        "import sys; from cliffscope.cli.main import cli;"
        "from click.testing import CliRunner;"
        "r = CliRunner().invoke(cli, ['--help']); assert r.exit_code == 0, r.output;"
        "print(sorted(m.split('.')[0] for m in sys.modules if m.split('.')[0] in "
        f"{HEAVY + ('textual',)!r}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith("[]"), out.stdout


def test_every_core_module_is_under_the_import_contract() -> None:
    """A new top-level module or package of cliffscope/ lands in .importlinter's core list
    (or in NOT_CORE here, with a contract of its own): the contracts cannot silently miss it."""
    import configparser
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    config = configparser.ConfigParser()
    config.read(root / ".importlinter")
    listed = set(config["importlinter:contract:core"]["source_modules"].split())
    present = {
        f"cliffscope.{p.stem}"
        for p in (root / "cliffscope").iterdir()
        if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").is_file()
    }
    assert present - listed == {f"cliffscope.{name}" for name in NOT_CORE}
    assert listed <= present


def test_validating_a_profile_and_listing_families_load_no_torch() -> None:
    """The profile schema asks the model registry for the families the adapter classes
    declare; the adapter modules must import torch and transformers only inside methods."""
    code = (
        "import json, sys;"
        "from cliffscope.profiles import Profile;"
        "from cliffscope.models.registry import list_families, model_types;"
        "Profile(name='p', model='m', family='gemma3'); list_families(); model_types();"
        "print(json.dumps(sorted(m.split('.')[0] for m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))

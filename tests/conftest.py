"""Shared pytest fixtures. Keep this file small: builders live in `tests/tiny_models.py`."""

from __future__ import annotations

import os

# Tiny models are dispatch-bound: one thread per process is several times faster than two
# threads fighting over a shared 2-core machine (10 ms vs 130 ms per forward, measured), and
# worker subprocesses started by tests inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")

from pathlib import Path

import pytest


def _tiny(tmp_path_factory: pytest.TempPathFactory, builder: str) -> Path:
    from tests import tiny_models

    return getattr(tiny_models, builder)(tmp_path_factory.mktemp(builder) / "model")


# Tiny offline VLM checkpoints (built once per test session, loaded via from_pretrained(path)).
@pytest.fixture(scope="session")
def tiny_llava_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _tiny(tmp_path_factory, "build_tiny_llava")


@pytest.fixture(scope="session")
def tiny_llava_next_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _tiny(tmp_path_factory, "build_tiny_llava_next")


@pytest.fixture(scope="session")
def tiny_qwen2_vl_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _tiny(tmp_path_factory, "build_tiny_qwen2_vl")


@pytest.fixture(scope="session")
def tiny_qwen2_5_vl_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _tiny(tmp_path_factory, "build_tiny_qwen2_5_vl")


@pytest.fixture(scope="session")
def tiny_vipllava_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A family without a dedicated adapter: loads through the generic adapter."""
    return _tiny(tmp_path_factory, "build_tiny_vipllava")


@pytest.fixture(scope="module")
def tiny_family(tmp_path_factory: pytest.TempPathFactory):
    """`tiny_family(name)` loads a 2026-family tiny checkpoint (tests/tiny_families.py), built
    once per test module; see `tests/tiny_family_layouts.py`."""
    from tests.tiny_family_layouts import FamilyLoader

    return FamilyLoader(tmp_path_factory)

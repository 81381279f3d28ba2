"""The tiny offline checkpoints for tests (they live in `cliffscope.conformance`, which
`cliffscope models support` also uses), plus the CLI tests' profile-dir helper."""

from __future__ import annotations

from pathlib import Path

from cliffscope.conformance.builders import *  # noqa: F403
from cliffscope.conformance.builders import BUILDERS, tiny_profile  # noqa: F401
from cliffscope.conformance.tokenizers import *  # noqa: F403


def profile_dirs(
    tmp_path: Path, model_path: Path, batch_size: int, max_new_tokens: int = 3
) -> tuple[Path, Path]:
    """A profiles dir holding `tiny.toml` for ``model_path``, and a runs dir, for CLI tests."""
    profiles, runs = tmp_path / "profiles", tmp_path / "runs"
    profiles.mkdir()
    (profiles / "tiny.toml").write_text(
        f'family = "llava"\nmodel = "{model_path}"\ndtype = "float32"\n'
        f"batch_size = {batch_size}\nmax_new_tokens = {max_new_tokens}\n"
    )
    return profiles, runs

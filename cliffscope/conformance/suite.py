"""Run the conformance checks over the tiny checkpoint of every family: the support matrix.

`FAMILY_BUILDERS` maps every registered family to the builder of its tiny checkpoint (the
generic adapter is exercised on VipLlava, a LLaVA relative without an adapter of its own).
`setup(...)` builds, saves and loads one (family, kernel, dtype) case; `run_case` runs the
checks on it; `support_matrix` runs them all for `cliffscope models support`.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path
from typing import Any

from cliffscope.conformance.checks import CHECKS, Outcome, Setup

ATTENTION = ("eager", "sdpa")
DTYPES = ("float32", "bfloat16")
PROMPTS = ["What colour?", "What colour is the shape in this image?"]
ANSWERS = ["red and blue", "yes"]


def family_builders() -> dict[str, Callable[[Path], Path]]:
    """Family name -> tiny-checkpoint builder, for every registered family."""
    from cliffscope.conformance import builders, families

    out = {
        "llava": builders.build_tiny_llava,
        "llava-next": builders.build_tiny_llava_next,
        "qwen2-vl": builders.build_tiny_qwen2_vl,
        "qwen2.5-vl": builders.build_tiny_qwen2_5_vl,
        "generic": builders.build_tiny_vipllava,
    }
    out.update(families.FAMILY_BUILDERS)
    return out


def images() -> list[Any]:
    """A landscape and a portrait noise image (so grids and tile counts differ by row)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    return [
        Image.fromarray(rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)),
        Image.fromarray(rng.integers(0, 256, (48, 16, 3), dtype=np.uint8)),
    ]


@cache
def _workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="cliffscope-conformance-"))


@cache
def checkpoint(family: str) -> Path:
    """The family's tiny checkpoint, built once per process."""
    return family_builders()[family](_workdir() / family)


def setup(family: str, attn: str, dtype: str) -> Setup:
    from cliffscope.conformance.builders import tiny_profile
    from cliffscope.models.loading import load_adapter

    path = checkpoint(family)
    adapter = load_adapter(tiny_profile(path, family, attn, dtype=dtype))
    eager = (
        adapter
        if attn == "eager"
        else load_adapter(tiny_profile(path, family, "eager", dtype=dtype))
    )
    return Setup(adapter=adapter, eager=eager, images=images(), prompts=PROMPTS, answers=ANSWERS)


def run_case(case: Setup, checks: Iterable[str] = CHECKS) -> dict[str, Outcome]:
    out: dict[str, Outcome] = {}
    for name in checks:
        try:
            out[name] = CHECKS[name](case)
        except Exception as exc:  # noqa: BLE001 - a crash is a failed check, with its reason
            out[name] = Outcome(False, f"{type(exc).__name__}: {exc}"[:200])
    return out


def support_matrix(
    families: Iterable[str] | None = None,
    attention: Iterable[str] = ATTENTION,
    dtypes: Iterable[str] = ("float32",),
    progress: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """One row per (family, kernel, dtype): every check's outcome and the seconds it took."""
    rows = []
    for family in families or family_builders():
        for attn in attention:
            for dtype in dtypes:
                start = time.perf_counter()
                outcomes = run_case(setup(family, attn, dtype))
                rows.append(
                    {
                        "family": family,
                        "attn": attn,
                        "dtype": dtype,
                        "checks": {
                            k: {"passed": o.passed, "detail": o.detail} for k, o in outcomes.items()
                        },
                        "seconds": round(time.perf_counter() - start, 1),
                    }
                )
                if progress:
                    passed = sum(o.passed for o in outcomes.values())
                    progress(f"{family} {attn} {dtype}: {passed}/{len(outcomes)}")
    return rows

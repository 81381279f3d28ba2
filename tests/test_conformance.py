"""The conformance suite: every family, eager and sdpa, float32 and bfloat16, every check.

Run alone with `python -m pytest -m conformance` (CI runs it at both ends of the supported
transformers range); `cliffscope models support` prints the same matrix. Each case (family x
kernel x dtype) is built and loaded once, then every check of `cliffscope.conformance.checks`
runs on it; a failure prints what was measured.
"""

from __future__ import annotations

import itertools
from functools import lru_cache

import pytest

from cliffscope.conformance.checks import CHECKS
from cliffscope.conformance.suite import ATTENTION, DTYPES, family_builders, setup
from cliffscope.models.registry import list_families

pytestmark = [pytest.mark.conformance, pytest.mark.slow]

FAMILIES = list(family_builders())
CASES = list(itertools.product(FAMILIES, ATTENTION, DTYPES, CHECKS))


@lru_cache(maxsize=1)  # the cases run in order: keep only the current one loaded
def _case(family: str, attn: str, dtype: str):
    return setup(family, attn, dtype)


def test_every_registered_family_has_a_tiny_checkpoint() -> None:
    assert set(FAMILIES) == set(list_families())


@pytest.mark.parametrize("family,attn,dtype,check", CASES, ids=["-".join(case) for case in CASES])
def test_conformance(family: str, attn: str, dtype: str, check: str) -> None:
    outcome = CHECKS[check](_case(family, attn, dtype))
    assert outcome.passed, f"{family} {attn} {dtype} {check}: {outcome.detail}"

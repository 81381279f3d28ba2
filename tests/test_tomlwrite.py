"""The generated-TOML writer round-trips and stays linear on long arrays."""

from __future__ import annotations

import sys
import time
from datetime import datetime, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from cliffscope.tomlwrite import dumps

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

KEYS = st.text(min_size=1, max_size=8)
SCALARS = st.one_of(
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=20),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=3)),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(KEYS, VALUES, max_size=6))
def test_round_trip(data: dict) -> None:
    assert tomllib.loads(dumps(data)) == data


def test_datetimes_and_none() -> None:
    when = datetime(2026, 11, 24, 18, 0, tzinfo=timezone.utc)
    text = dumps({"created": when, "error": None, "profile": {"name": "demo", "x": None}})
    assert tomllib.loads(text) == {"created": when, "profile": {"name": "demo"}}


def test_long_arrays_are_fast() -> None:
    ids = [f"shapes-{i:06d}" for i in range(50_000)]
    start = time.perf_counter()
    text = dumps({"subset": {"ids": ids, "hash": "sha256:x"}})
    assert time.perf_counter() - start < 2.0
    assert tomllib.loads(text)["subset"]["ids"] == ids

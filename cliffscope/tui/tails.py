"""Bounded incremental reads of samples files, so a 50,000-sample run loads in slices.

`JsonlTail` returns everything appended since the last call; the first call on a big file
would parse tens of megabytes in one go, holding the interpreter while the UI waits. This
tail reads at most `max_bytes` per call (whole lines only) and says whether more is waiting.
Sample lines also lose their per-layer JSON arrays here (kilobytes of Python floats each):
the dashboard draws curves from result.json, and the Samples tab's per-layer masses of one
sample need only a compact float16 table (`compact_mass`), about 300 bytes at 32 layers.
"""

from __future__ import annotations

import os
from typing import Any

from cliffscope.store.jsonl import JsonlTail

CHUNK_BYTES = 2 * 1024 * 1024
HEAVY_KEYS = ("mass", "density")


def compact_mass(mass: Any) -> tuple[tuple[str, ...], Any] | None:
    """`{"image": [L floats], ...}` as (groups, float16 array (groups, L)); None if ragged."""
    import numpy as np

    if not isinstance(mass, dict) or not mass:
        return None
    try:
        values = np.asarray(list(mass.values()), dtype=np.float16)
    except (TypeError, ValueError):
        return None
    return (tuple(map(str, mass)), values) if values.ndim == 2 else None


def slim(record: dict[str, Any]) -> dict[str, Any]:
    """A sample line without its per-layer arrays; the masses kept compact."""
    if not any(key in record for key in HEAVY_KEYS):
        return record
    out = {k: v for k, v in record.items() if k not in HEAVY_KEYS}
    table = compact_mass(record.get("mass"))
    if table is not None:
        out["mass"] = table
    return out


class ChunkedTail(JsonlTail):
    """A samples-file tail that reads `CHUNK_BYTES` per poll and drops per-layer arrays."""

    def __init__(self, path: str | os.PathLike, max_bytes: int = CHUNK_BYTES) -> None:
        super().__init__(path, max_bytes=max_bytes)

    def record(self, record: dict[str, Any]) -> dict[str, Any]:
        return slim(record)

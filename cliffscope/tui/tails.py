"""Bounded incremental reads of samples files, so a 50,000-sample run loads in slices.

`JsonlTail` returns everything appended since the last call; the first call on a big file
would parse tens of megabytes in one go, holding the interpreter while the UI waits. This
tail reads at most `max_bytes` per call (whole lines only) and says whether more is waiting.
Sample lines also lose their per-layer arrays here: the dashboard draws curves from
result.json and only lists answers per sample.
"""

from __future__ import annotations

import os
from typing import Any

from cliffscope.store.jsonl import JsonlTail

CHUNK_BYTES = 2 * 1024 * 1024
HEAVY_KEYS = ("mass", "density")


def slim(record: dict[str, Any]) -> dict[str, Any]:
    """A sample line without its per-layer arrays (kilobytes each, unused by the lists)."""
    if any(key in record for key in HEAVY_KEYS):
        return {k: v for k, v in record.items() if k not in HEAVY_KEYS}
    return record


class ChunkedTail(JsonlTail):
    """A samples-file tail that reads `CHUNK_BYTES` per poll and drops per-layer arrays."""

    def __init__(self, path: str | os.PathLike, max_bytes: int = CHUNK_BYTES) -> None:
        super().__init__(path, max_bytes=max_bytes)

    def record(self, record: dict[str, Any]) -> dict[str, Any]:
        return slim(record)

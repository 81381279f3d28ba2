"""Bounded incremental reads of samples files, so a 50,000-sample run loads in slices.

`JsonlTail` returns everything appended since the last call; the first call on a big file
would parse tens of megabytes in one go, holding the interpreter while the UI waits. This
tail reads at most `max_bytes` per call (whole lines only) and says whether more is waiting.
Sample lines also lose their per-layer arrays here: the dashboard draws curves from
result.json and only lists answers per sample.
"""

from __future__ import annotations

import json
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
    def __init__(self, path: str | os.PathLike, max_bytes: int = CHUNK_BYTES) -> None:
        super().__init__(path)
        self.max_bytes = max_bytes
        self.behind = False  # more complete lines are waiting after the last read

    def read_new(self) -> list[dict[str, Any]]:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return []
        if self._inode is not None and (stat.st_ino != self._inode or stat.st_size < self.offset):
            self.offset = 0  # replaced or truncated: start over
        self._inode = stat.st_ino
        want = stat.st_size - self.offset
        if want <= 0:
            self.behind = False
            return []
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            chunk = fh.read(min(want, self.max_bytes))
        end = chunk.rfind(b"\n") + 1
        if end == 0 and want > self.max_bytes:  # one line longer than a chunk: take it whole
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                chunk = fh.read(want)
            end = chunk.rfind(b"\n") + 1
        self.offset += end
        self.behind = self.offset < stat.st_size and want > len(chunk)
        records = []
        for raw in chunk[:end].split(b"\n"):
            if raw.strip():
                try:
                    record = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(record, dict):
                    records.append(slim(record))
        return records

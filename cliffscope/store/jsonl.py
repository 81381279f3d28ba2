"""Append-only JSON-lines files that survive a crash mid-write.

Each record is written as one `write()` of a complete line and fsynced, so after a crash the
file holds whole lines plus at most one torn last line. Readers skip a torn last line; a bad line
in the middle means real corruption and is reported with its line number.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cliffscope.errors import Location, ValidationError
from cliffscope.store.atomic import json_safe


class JsonlWriter:
    """Keeps the file open in append mode; one fsync per record (records are few and precious)."""

    def __init__(self, path: str | os.PathLike, fsync: bool = True) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fsync = fsync
        self._repair_torn_tail()
        self._fh = open(self.path, "ab", buffering=0)  # noqa: SIM115 - closed in close()

    def _repair_torn_tail(self) -> None:
        """Cut a torn last line left by a crash, so new records start on a fresh line."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return
        with open(self.path, "rb+") as fh:
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) == b"\n":
                return
            fh.seek(0)
            cut = fh.read().rfind(b"\n") + 1
            fh.truncate(cut)

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(json_safe(record), ensure_ascii=False, allow_nan=False) + "\n"
        self._fh.write(line.encode("utf-8"))
        if self._fsync:
            os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def append_jsonl(path: str | os.PathLike, record: dict[str, Any]) -> None:
    """One-shot append (opens, writes one line, fsyncs, closes)."""
    with JsonlWriter(path) as writer:
        writer.write(record)


def read_jsonl(path: str | os.PathLike, strict_middle: bool = False) -> list[dict[str, Any]]:
    return [rec for rec in iter_jsonl(path, strict_middle=strict_middle)]


def iter_jsonl(path: str | os.PathLike, strict_middle: bool = False) -> Iterator[dict[str, Any]]:
    """Yield records; a torn last line is skipped, a bad middle line skipped or raised."""
    path = Path(path)
    if not path.exists():
        return
    with open(path, "rb") as fh:
        lines = fh.read().split(b"\n")
    last = len(lines) - 1
    for number, raw in enumerate(lines):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
            if not isinstance(record, dict):
                raise ValueError("not an object")
        except (ValueError, UnicodeDecodeError) as exc:
            if number >= last - 1 and not raw.endswith(b"}"):
                return  # torn tail from a crash mid-append
            if strict_middle:
                raise ValidationError(
                    f"corrupt record: {exc}", where=Location(str(path), number + 1)
                ) from None
            continue
        yield record


class JsonlTail:
    """Incremental reader: each `read_new()` returns only records appended since the last call.

    The dashboard polls run dirs every few hundred milliseconds; re-reading a 50,000-line file
    each time would be wasteful, so this keeps a byte offset and only parses complete new lines.
    With ``max_bytes`` a call reads at most that much (whole lines; a longer single line is
    taken whole) and `behind` says whether more complete lines are waiting, so a first read of
    a huge file can be spread over several polls.
    """

    def __init__(self, path: str | os.PathLike, max_bytes: int | None = None) -> None:
        self.path = Path(path)
        self.offset = 0
        self.max_bytes = max_bytes
        self.behind = False  # more complete lines are waiting after the last read
        self._inode: int | None = None

    def record(self, record: dict[str, Any]) -> dict[str, Any]:
        """What a parsed line becomes; subclasses may slim it."""
        return record

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
        limit = want if self.max_bytes is None else min(want, self.max_bytes)
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            chunk = fh.read(limit)
            end = chunk.rfind(b"\n") + 1  # only complete lines; a partial tail waits
            if end == 0 and want > limit:  # one line longer than a chunk: take it whole
                chunk += fh.read(want - limit)
                end = chunk.rfind(b"\n") + 1
        self.offset += end
        self.behind = self.offset < stat.st_size and want > len(chunk)
        records = []
        for raw in chunk[:end].split(b"\n"):
            if raw.strip():
                try:
                    rec = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(rec, dict):
                    records.append(self.record(rec))
        return records

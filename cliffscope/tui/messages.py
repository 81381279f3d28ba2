"""Messages the poller thread posts to the app ("attributes down, messages up").

Snapshot messages replace a pending one of their kind (`can_replace`), so a slow UI never
works through a backlog of stale states; detail messages carry appended records and are
therefore never dropped.
"""

from __future__ import annotations

from typing import Any

from textual.message import Message

from cliffscope.tui.gpu import GpuStat
from cliffscope.tui.rows import RunRow


class RunsSnapshot(Message):
    """The whole runs table as it is on disk now."""

    def __init__(self, rows: tuple[RunRow, ...]) -> None:
        super().__init__()
        self.rows = rows

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, RunsSnapshot)


class RunDetail(Message):
    """What changed in one watched run since the last message about it."""

    def __init__(
        self,
        run_id: str,
        row: RunRow | None,
        result: dict[str, Any] | None,
        result_changed: bool,
        samples: list[dict[str, Any]],
        events: list[dict[str, Any]],
        reset: bool,
    ) -> None:
        super().__init__()
        self.run_id = run_id
        self.row = row
        self.result = result
        self.result_changed = result_changed
        self.samples = samples
        self.events = events
        self.reset = reset  # first message after watch(): drop anything held before


class GpuStats(Message):
    def __init__(self, gpus: tuple[GpuStat, ...] | None) -> None:
        super().__init__()
        self.gpus = gpus

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, GpuStats)


class PollerProblem(Message):
    """The poller hit an unexpected error; it keeps polling, the app shows it once."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, PollerProblem) and message.text == self.text

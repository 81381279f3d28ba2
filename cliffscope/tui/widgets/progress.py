"""A run's progress line: bar, done/total, percent, ETA and status, from poller rows."""

from __future__ import annotations

from rich.console import Group
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from cliffscope.tui.format import status_text
from cliffscope.tui.rows import RunRow
from cliffscope.vocab import fmt_clock


class RunProgress(Static):
    """The ETA comes from the worker's own progress events (see poller), not a UI clock."""

    DEFAULT_CSS = "RunProgress { height: 1; }"

    def show(self, row: RunRow | None) -> None:
        if row is None:
            self.update("")
            return
        grid = Table.grid(expand=True, padding=(0, 1))
        grid.add_column(ratio=1)
        grid.add_column(no_wrap=True)
        total = max(row.total, 1)
        bar = ProgressBar(
            total=total,
            completed=min(row.done, total),
            complete_style="green" if row.status == "done" else "cyan",
            finished_style="green",
        )
        info = Text(f"{row.done}/{row.total} ({100 * row.done // total}%)  ")
        if row.status == "running":
            info.append(f"eta {fmt_clock(row.eta_s)}  ")
        info.append_text(status_text(row.status))
        grid.add_row(bar, info)
        self.update(Group(grid))

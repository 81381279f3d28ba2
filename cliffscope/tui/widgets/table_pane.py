"""A run-view pane whose main widget is one table: its columns and the cursor keys."""

from __future__ import annotations

from textual.containers import Vertical
from textual.widgets import DataTable


class TablePane(Vertical, can_focus=False):
    """The Sweep, Prune and Knockout panes: a header above a plot above a DataTable."""

    columns: tuple[str, ...] = ()

    def set_columns(self, columns: tuple[str, ...]) -> None:
        """Give the table `columns` (its rows go with the old ones; nothing if they are equal)."""
        if columns != self.columns:
            self.columns = columns
            table = self.query_one(DataTable)
            table.clear(columns=True)
            table.add_columns(*columns)

    def move(self, step: int) -> None:
        """Move the table's cursor `step` rows, kept inside the table."""
        table = self.query_one(DataTable)
        if table.row_count:
            row = min(max(table.cursor_row + step, 0), table.row_count - 1)
            table.move_cursor(row=row, animate=False)

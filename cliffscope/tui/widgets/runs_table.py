"""The runs table: one row per run directory, updated in place as the poller reports.

Column widths follow the terminal: the fixed columns stay readable at 80x24, the free text
(profile, task, result) gets what is left, and a wide terminal also shows the full run id.
Updates touch only the cells that changed, so a refresh with 300 runs costs microseconds
and the cursor never jumps.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from rich.text import Text
from textual.widgets import DataTable

from cliffscope.tui.format import clip, progress_cell, status_text
from cliffscope.tui.rows import RunRow
from cliffscope.vocab import age

FIXED = {"mark": 1, "kind": 8, "status": 11, "progress": 10, "age": 3}
ID_WIDTH = 46


class RunsTable(DataTable):
    """Rows keyed by run id; `set_rows` diffs against what is shown."""

    DEFAULT_CSS = "RunsTable { height: 1fr; }"

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, cell_padding=0, **kwargs)
        self._shown: list[RunRow] = []
        self._marked: set[str] = set()
        self._now: datetime | None = None
        self._widths: dict[str, int] = {}

    # ---- layout ---------------------------------------------------------------------------
    def _layout(self, width: int) -> dict[str, int]:
        columns = ["mark", "kind", "profile", "task", "status", "progress", "result", "age"]
        gaps = len(columns)
        free = max(width - 2 - sum(FIXED.values()) - gaps, 24)
        show_id = free >= 80 + ID_WIDTH
        if show_id:
            free -= ID_WIDTH + 1
        profile = min(max(8, free // 4), 24)
        task = min(max(10, free * 3 // 10), 24)
        widths = dict(FIXED, profile=profile, task=task, result=free - profile - task)
        if free >= 60:  # room for the full headline and a longer bar
            widths["progress"] += 4
            widths["result"] -= 4
        if show_id:
            widths["id"] = ID_WIDTH
        return widths

    def on_resize(self) -> None:
        widths = self._layout(self.size.width)
        if widths != self._widths:
            self._widths = widths
            self._rebuild(self._shown)

    # ---- cells ----------------------------------------------------------------------------
    def _cells(self, row: RunRow, marked: set[str] | None = None) -> list[Text | str]:
        w = self._widths
        marked = self._marked if marked is None else marked
        wide = w["result"] >= 28
        result = (row.headline if wide else row.short_result) or row.error or row.problem
        cells: dict[str, Text | str] = {
            "mark": Text("●", style="bold yellow") if row.id in marked else "",
            "kind": row.kind,
            "profile": clip(row.profile, w["profile"]),
            "task": clip(row.task, w["task"]),
            "status": status_text(row.status),
            "progress": progress_cell(row.done, row.total, w["progress"]),
            "result": Text(clip(result, w["result"]), style="" if row.headline else "red"),
            "age": age(row.created, self._now) if self._now else "",
        }
        if "id" in w:
            cells["id"] = clip(row.id, w["id"])
        return [cells[key] for key in self._order()]

    def _order(self) -> list[str]:
        order = ["mark", "kind", "profile", "task", "status", "progress", "result", "age"]
        return (["mark", "id"] + order[1:]) if "id" in self._widths else order

    def _rebuild(self, rows: list[RunRow]) -> None:
        if not self._widths:
            return
        keep = self.cursor_run_id
        self.clear(columns=True)
        for key in self._order():
            label = "" if key == "mark" else key
            self.add_column(label, width=self._widths[key] + 1, key=key)
        for row in rows:
            self.add_row(*self._cells(row), key=row.id)
        self._shown = rows
        self._restore_cursor(keep)

    def _restore_cursor(self, run_id: str | None) -> None:
        if run_id is None or not self._shown:
            return
        try:
            index = self.get_row_index(run_id)
        except Exception:  # noqa: BLE001 - the run left the filter: stay where we are
            return
        self.move_cursor(row=index, animate=False)

    # ---- public -----------------------------------------------------------------------------
    @property
    def cursor_run_id(self) -> str | None:
        if not self._shown or not (0 <= self.cursor_row < len(self._shown)):
            return None
        return self._shown[self.cursor_row].id

    @property
    def shown(self) -> list[RunRow]:
        return self._shown

    def set_rows(self, rows: list[RunRow], marked: Iterable[str], now: datetime) -> None:
        """Show exactly `rows` in this order, touching only cells whose text changed."""
        before_marked = self._marked
        self._marked, self._now = set(marked), now
        if not self._widths:
            self._shown = rows
            return
        if [r.id for r in rows] != [r.id for r in self._shown]:
            self._rebuild(rows)
            return
        order = self._order()
        for old, new in zip(self._shown, rows, strict=True):
            new_cells = self._cells(new)
            old_cells = self._cells(old, before_marked)
            for key, before, after in zip(order, old_cells, new_cells, strict=True):
                if str(before) != str(after):
                    self.update_cell(new.id, key, after)
        self._shown = rows

    def select_run(self, run_id: str) -> None:
        self._restore_cursor(run_id)

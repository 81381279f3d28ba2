"""The toy kind's run-view pane (see tests/toy_plugin.py); imported only by the dashboard."""

from __future__ import annotations

from textual.widgets import Static

from cliffscope.tui.pane_view import PaneView


class ToyPane(Static):
    def show_view(self, view: PaneView) -> None:
        result = view.result or {}
        self.update(f"toy pane: strategy {result.get('strategy')} {view.note}".strip())

"""A footer that rebuilds only when the keys it shows change.

Textual's Footer recomposes (a dozen widgets) on every bindings refresh, and one tab switch
sends three (focus lost, focus set, stack update). Coalescing them and skipping no-op
refreshes keeps a key press on a loaded machine within the 100 ms budget.
"""

from __future__ import annotations

from textual.screen import Screen
from textual.widgets import Footer


class KeysFooter(Footer):
    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("compact", True)
        super().__init__(**kwargs)
        self._pending = False
        self._shown: tuple = ()

    def _signature(self, screen: Screen) -> tuple:
        return tuple(
            (key, active.binding.description, active.enabled)
            for key, active in screen.active_bindings.items()
            if active.binding.show
        )

    def bindings_changed(self, screen: Screen) -> None:
        if self._pending:
            return
        self._pending = True
        self.call_after_refresh(self._apply, screen)

    def _apply(self, screen: Screen) -> None:
        self._pending = False
        if not self.is_attached or screen is not self.screen:
            return
        signature = self._signature(screen)
        if signature == self._shown and self._bindings_ready:
            return
        self._shown = signature
        super().bindings_changed(screen)

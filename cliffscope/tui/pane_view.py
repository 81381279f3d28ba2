"""What a run kind's pane is shown: one run of its kind and the cliff estimates around it.

The run view builds one `PaneView` per pane and calls the pane's `show_view(view)`; a pane
of a kind declared by a plugin gets the same. `run` is the run being viewed when it is of
the pane's kind, else its partner of that kind (`note` then says which, or that there is
none yet).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich.text import Text

from cliffscope.kinds.base import RunKind
from cliffscope.report.rundata import RunData


@dataclass
class PaneView:
    kind: RunKind
    run: RunData | None
    note: str = ""
    cliffs: Text = field(default_factory=Text)  # every estimate, the header's words
    estimates: list[dict[str, Any]] = field(default_factory=list)  # `report.tables.cliff_rows`

    @property
    def result(self) -> dict[str, Any] | None:
        return self.run.result if self.run is not None else None

    def others(self) -> list[tuple[int, str, str]]:
        """(layer, name, colour) of the other kinds' estimates (plots mark them)."""
        from cliffscope.report import tables

        if self.run is None:
            return []
        return tables.other_estimates(self.estimates, self.run)

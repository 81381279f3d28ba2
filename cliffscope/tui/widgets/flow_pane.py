"""The Flow tab: per-layer attention to each token group, and both cliff estimates in words."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Static

from cliffscope.report.tables import groups, method_for
from cliffscope.tui.pane_view import PaneView
from cliffscope.tui.widgets.plots import FlowPlot, legend_text
from cliffscope.vocab import MISSING, fmt


def cliff_text(rows: list[dict[str, Any]], score: dict[str, Any] | None) -> Text:
    """`flow cliff 3 [2–4] · sweep cliff 2 · score 0.900 [0.800, 0.970]` from report rows,
    each estimate named and coloured as its kind declares (`CliffMethod`)."""
    text = Text()
    for row in rows:
        method = method_for(row["estimate"])
        name = method.short if method else str(row["estimate"])
        colour = method.colour if method else "white"
        text.append(f"{name} ", style=f"bold {colour}")
        if row["layer"] is None:
            text.append(str(row.get("verdict") or MISSING))
        else:
            text.append(str(row["layer"]))
            if row.get("lo") is not None and row.get("hi") is not None:
                text.append(f" [{row['lo']}–{row['hi']}]")
            if row.get("depth") is not None:
                text.append(f" ({row['depth']:.2f} depth)", style="dim")
        text.append("   ")
    if score and score.get("value") is not None:
        text.append("score ", style="bold")
        text.append(f"{fmt(score['value'])} [{fmt(score.get('lo'))}, {fmt(score.get('hi'))}]")
    return text


class FlowPane(Vertical, can_focus=True):
    BINDINGS = [Binding("d", "toggle_measure", "Mass/density", show=False)]
    SCREEN_KEYS = [Binding("d", "toggle_measure", "Flow: mass/density", show=False)]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.measure = "mass"
        self.colour = "magenta"  # the cliff's colour (`show_view` takes its kind's)
        self._result: dict[str, Any] | None = None
        self._source = ""

    def compose(self) -> ComposeResult:
        yield Static(id="flow-note", classes="pane-note")
        yield Static(id="flow-legend", classes="pane-note")
        yield FlowPlot(id="flow-plot")

    def show(
        self,
        result: dict[str, Any] | None,
        cliffs: Text,
        source: str = "",
    ) -> None:
        self._result, self._source = result, source
        note = Text()
        if source:
            note.append(source + "\n", style="italic")
        note.append_text(cliffs)
        reason = ((result or {}).get("cliff") or {}).get("reason")
        if reason:
            note.append(f"\n{reason}", style="dim")
        self.query_one("#flow-note", Static).update(note)
        legend = legend_text(groups(result) if result else [])
        legend.append("(d: mass/density)", style="dim")
        self.query_one("#flow-legend", Static).update(legend)
        self.query_one(FlowPlot).show(result, self.measure, self.colour)

    def show_view(self, view: PaneView) -> None:
        if view.kind.cliff_method is not None:
            self.colour = view.kind.cliff_method.colour
        self.show(view.result, view.cliffs, view.note)

    def action_toggle_measure(self) -> None:
        self.measure = "density" if self.measure == "mass" else "mass"
        self.query_one(FlowPlot).show(self._result, self.measure, self.colour)

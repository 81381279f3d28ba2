"""What a run kind declares: the one object every front end asks about runs of that kind.

A kind (analysis, sweep, and whatever a plugin adds) is a `RunKind` subclass registered under
its name (`kinds.registry`). It names its typed parameters (`Params`, which generate the CLI
command and the launch form), its worker job (`job`, a `worker.job.Job` subclass, imported
only by the worker), how to read its result.json (score, cliff estimate, headline, per-layer
table), its Markdown report sections, its run-view panes and Samples-tab view (dashboard
classes named as "module:Class" strings, so this module imports no textual), its curve on
the compare screen, and its partner kinds.

Partners: runs of partner kinds on the same model and task find each other (either side may
declare the link), so each kind's cliff estimate (`cliff_method`) stands beside the others' in
the run view, `runs show`, the report and the comparison. A kind module imports nothing
heavy at import time: `cliffscope --help` loads every kind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import import_module
from typing import TYPE_CHECKING, Any, ClassVar

from cliffscope.kinds.params import KindParams
from cliffscope.vocab import finite

if TYPE_CHECKING:
    from cliffscope.report.rundata import RunData
    from cliffscope.report.summary import Assets


@dataclass(frozen=True)
class CliffMethod:
    """How a kind estimates the cliff, as every front end labels and colours it."""

    key: str  # column stem: flow_cliff, flow_cliff_depth, flow_verdict (CSV, compare)
    label: str  # "attention flow": the estimate's name in tables
    short: str  # "flow cliff": the header, plots and `runs show`
    colour: str  # a vocabulary colour name (plots, header, report figures)
    definition: str = ""  # one sentence under the report's cliff table
    marker: str = ""  # how another kind's per-layer table marks this cliff (default: short)

    @property
    def mark(self) -> str:
        return self.marker or self.short


@dataclass(frozen=True)
class Pane:
    """One run-view tab: its id, its title and the widget class ("module:Class")."""

    name: str
    title: str
    widget: Any


@dataclass(frozen=True)
class CurveSpec:
    """A kind's curve on normalised depth (compare screen, compare.md, compare figure)."""

    title: str  # the dashboard's plot title
    text_title: str  # the compare.md text plot
    figure_title: str  # the figure panel
    ylabel: str
    zero_line: bool = False  # draw y = 0 (a change against a baseline)


@dataclass
class LayerTable:
    """`cliffscope runs show`'s per-layer numbers, as text cells (all right-aligned)."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)


class RunKind:
    """Base of every kind declaration; subclasses set the class attributes and override the
    readers they need. Every reader tolerates a partial or absent result (a run that has not
    reached its first checkpoint still renders)."""

    name: ClassVar[str] = ""
    command: ClassVar[str] = ""  # the CLI command (`cliffscope analyze`)
    title: ClassVar[str] = ""  # a few words: launch form, palette
    help: ClassVar[str] = ""  # the CLI command's help
    Params: ClassVar[type[KindParams]] = KindParams
    job: ClassVar[Any] = ""  # "module:Class" of its `worker.job.Job`, or the class
    cliff_method: ClassVar[CliffMethod | None] = None
    partners: ClassVar[tuple[str, ...]] = ()
    records_partners: ClassVar[tuple[str, ...]] = ()  # partner cliffs the job writes down
    panes: ClassVar[tuple[Pane, ...]] = ()
    samples_view: ClassVar[Any] = "cliffscope.tui.sample_views:PlainSamples"
    curve: ClassVar[CurveSpec | None] = None
    score_label: ClassVar[str] = ""  # what the score is, when not the task score
    examples_title: ClassVar[str] = "answers"
    #: a module whose functions of the readers' names (`notes`, `layer_table`, `depth_curve`,
    #: `depth_reference`, `sections`, `figures`, `data`, `csv_files`) serve this kind
    report_module: ClassVar[str] = ""

    def _report(self, name: str) -> Any:
        if not self.report_module:
            return None
        return getattr(import_module(self.report_module), name, None)

    # ---- its result ---------------------------------------------------------------------
    def cliff(self, result: dict[str, Any]) -> dict[str, Any] | None:
        """This kind's own cliff estimate in its result (layer, lo, hi, verdict, reason)."""
        cliff = result.get("cliff")
        return cliff if isinstance(cliff, dict) else None

    def score(self, result: dict[str, Any]) -> dict[str, float | None] | None:
        """{"value", "lo", "hi"} of the run's headline score, or None."""
        value = result.get("score")
        if not isinstance(value, dict):
            return None
        return {k: finite(value.get(k)) for k in ("value", "lo", "hi")}

    def headline(self, result: dict[str, Any]) -> str:
        """One short phrase for tables: the score and the cliff."""
        parts = []
        score = (self.score(result) or {}).get("value")
        if score is not None:
            parts.append(f"{result.get('metric', 'score')} {score:.3f}")
        cliff = self.cliff(result) or {}
        if cliff.get("layer") is not None:
            parts.append(f"cliff {cliff['layer']}")
        elif cliff.get("verdict"):
            parts.append(str(cliff["verdict"]))
        return ", ".join(parts)

    def notes(self, result: dict[str, Any]) -> list[str]:
        """Facts a reader must see beside the numbers (e.g. a half-precision sweep's engine
        check): printed by `runs show`, the run view and the report."""
        fn = self._report("notes")
        return fn(result) if fn else []

    def layer_table(self, result: dict[str, Any]) -> LayerTable | None:
        """The per-layer numbers `runs show` prints (None: nothing to show yet)."""
        fn = self._report("layer_table")
        return fn(result) if fn else None

    def depth_curve(self, run: RunData) -> tuple[list[float], list[float]] | None:
        """(depths, values) for the compare views; None when the run has none yet."""
        fn = self._report("depth_curve")
        return fn(run) if fn else None

    def depth_reference(self, run: RunData) -> float | None:
        """A per-run horizontal reference in the compare figure (e.g. the even spread)."""
        fn = self._report("depth_reference")
        return fn(run) if fn else None

    # ---- its report ---------------------------------------------------------------------
    def report_sections(
        self, run: RunData, estimates: list[dict[str, Any]], assets: Assets
    ) -> list[str]:
        """Markdown sections after the cliff table (figures are already in `assets`)."""
        fn = self._report("sections")
        return fn(run, estimates, assets) if fn else []

    def report_figures(
        self, run: RunData, estimates: list[dict[str, Any]], figure: Any, assets: Assets
    ) -> None:
        """Draw the run's figures: `figure.draw(make, name, *args)` writes figures/<name> (and
        returns its link or None); record links in `assets.figures` / `assets.textplots`."""
        fn = self._report("figures")
        if fn:
            fn(run, estimates, figure, assets)

    def report_data(self, run: RunData) -> dict[str, Any]:
        """Extra keys of data/summary.json (full precision)."""
        fn = self._report("data")
        return fn(run) if fn else {}

    def csv_files(self, data: dict[str, Any]) -> dict[str, tuple[list[dict], list[str]]]:
        """data/<name>.csv files from `report_data`'s output: name -> (rows, columns)."""
        fn = self._report("csv_files")
        return fn(data) if fn else {}

    def example_lines(self, samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The sample lines the report's examples table shows (one per sample)."""
        return [s for s in samples if "prediction" in s]

    def __repr__(self) -> str:
        return f"<run kind {self.name}>"

"""The `knockout` kind: attention knockout, the causal estimate of where the image stops mattering.

Per edge type (`knockout_edges`: image->last, image->instruction …) and window start l, the
target group's queries lose the source group's keys in layers l .. l+w-1 (a mask, nothing
removed; `engines.knockout`), the model's own baseline answer is teacher-forced, and the
relative change of its probability is recorded (first answer token and whole answer).

Declared here once: its parameters (`cliffscope knockout` options and the launch form), its
job (`worker.knockout_job`), how its result reads and reports (`report.knockout_report`), its
run-view pane (Knockout) and Samples view, and its partners: the analysis and the sweep of the
same model and task, whose cliffs it records and beside which its own cliff stands.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import field_validator

from cliffscope.errors import ValidationError
from cliffscope.kinds.base import CliffMethod, CurveSpec, Pane, RunKind
from cliffscope.kinds.params import KindParams, param
from cliffscope.knockout_edges import DEFAULT_EDGES_TEXT, EDGES_HELP, parse_edges
from cliffscope.sweep_layers import parse_layers

NAME = "knockout"

#: the edges whose cost decides the knockout cliff (those of them the run blocks)
CLIFF_EDGES: tuple[str, ...] = ("image->last", "image->instruction")

STARTS_HELP = (
    "Window starts l: 'all' (0..L-1, the default), a list '0,4,8', or a range 'a:b' / "
    "'a:b:step' whose END IS INCLUDED. Each window blocks layers l .. l+window-1, clipped at L."
)


class KnockoutParams(KindParams):
    edges: str = param(
        DEFAULT_EDGES_TEXT,
        EDGES_HELP.partition(" Default:")[0],
        placeholder="source->target, comma-separated",
        summary=False,
    )
    window: int = param(
        9,
        "Consecutive layers blocked per window (the paper's 9 of LLaVA's 32; clipped at the "
        "last layer). 0 blocks nothing (the baseline, for checking).",
        placeholder="layers blocked per window",
        ge=0,
    )
    layers: str | list[int] = param(
        "all", STARTS_HELP, placeholder="all l = 0..L-1; or 0:8:2; or 0,2,4", summary=False
    )
    tolerance: float = param(
        0.05,
        "Largest relative fall of the answer's probability still counted as harmless (0.05 = "
        "5%): the knockout cliff is the first window start from which blocking "
        + " and ".join(CLIFF_EDGES)
        + " costs less than this.",
        placeholder="largest relative fall counted as harmless",
        ge=0.0,
        le=1.0,
    )
    cliff_on: Literal["answer", "first"] = param(
        "answer",
        "Which probability the cliff reads: the whole answer's, or its first token's.",
        label="cliff on",
        labels={"answer": "whole answer", "first": "first answer token"},
    )
    engine: Literal["shared", "naive"] = param(
        "shared",
        "shared: one baseline forward per batch, branches recomputed from the first blocked "
        "layer; naive: one forward per (edge, window) (same numbers, slower; for checking).",
        labels={"shared": "shared prefix (fast)", "naive": "every window on its own (check)"},
    )
    checkpoint_s: float = param(15.0, "Seconds between result.json rewrites.", hidden=True, gt=0)

    @field_validator("edges", mode="before")
    @classmethod
    def _edges(cls, value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            value = ",".join(map(str, value))
        return ",".join(str(e) for e in parse_edges(value))

    @field_validator("layers", mode="before")
    @classmethod
    def _layers(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, str):
            return value
        try:
            return parse_layers(value)
        except ValidationError as exc:
            raise ValidationError(exc.what, hint=STARTS_HELP) from None

    def edge_list(self) -> list[str]:
        return self.edges.split(",")


class KnockoutKind(RunKind):
    name = NAME
    command = "knockout"
    title = "attention knockout"
    help = (
        "Block attention edges between token groups in a window of layers and measure how much "
        "the probability of the model's own answer falls; find the knockout cliff (shown beside "
        "the flow cliff and the sweep cliff of the same profile and task)."
    )
    Params = KnockoutParams
    job = "cliffscope.worker.knockout_job:KnockoutJob"
    cliff_method = CliffMethod(
        "knockout",
        "attention knockout",
        "knockout cliff",
        "yellow",
        "The knockout cliff is the first window start from which blocking "
        + " and ".join(CLIFF_EDGES)
        + " lowers the answer's probability by less than the tolerance.",
        marker="knockout cliff (l)",
    )
    partners = ("analysis", "sweep")
    records_partners = ("analysis", "sweep")
    panes = (Pane("knockout", "Knockout", "cliffscope.tui.widgets.knockout_pane:KnockoutPane"),)
    samples_view = "cliffscope.tui.sample_views:KnockoutSamples"
    report_module = "cliffscope.report.knockout_report"
    curve = CurveSpec(
        title="p(answer) change, image edges knocked out (worst)",
        text_title="relative change of p(answer), worst image edge blocked from depth l / L",
        figure_title="attention knockout: worst of "
        + " / ".join(CLIFF_EDGES)
        + " from depth l / L",
        ylabel="relative change of p(answer)",
        zero_line=True,
    )
    score_label = "baseline "
    examples_title = "baseline answers"


KIND = KnockoutKind()

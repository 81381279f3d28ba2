"""The `analysis` kind: attention flow per layer and group, its cliff, and maps.

Declared here once: its parameters (`cliffscope analyze` options and the launch form), its
job (`worker.analysis_job`), how its result reads and reports (`report.flow_report`),
its run-view panes (Flow, Maps) and its Samples view. Partnered by the sweep kind, which
declares the link.
"""

from __future__ import annotations

from typing import Any, Literal

from cliffscope.kinds.base import CliffMethod, CurveSpec, Pane, RunKind
from cliffscope.kinds.params import KindParams, param

NAME = "analysis"


class AnalysisParams(KindParams):
    query: Literal["last", "answer"] = param(
        "last",
        "Attention of the last prompt position, or of every answer token (teacher-forced).",
        labels={"last": "last prompt position", "answer": "every answer token"},
    )
    heads: Literal["mean", "max"] = param(
        "mean",
        "How attention heads are reduced (max as in the paper's code).",
        labels={"mean": "mean over heads", "max": "max over heads"},
    )
    cam: bool = param(
        False,
        "LLaVA-CAM and attention maps for EVERY sample (default: the first --map-samples).",
        label="maps for",
        labels={False: "the first map samples", True: "every sample (slow)"},
    )
    map_samples: int = param(
        4,
        "Samples that get attention + CAM maps.",
        placeholder="samples with attention + CAM maps",
        ge=0,
    )
    smooth_n: int = param(
        0,
        "SmoothGrad copies for CAM (0 = off).",
        flag="--smoothgrad",
        label="smoothgrad",
        placeholder="noisy copies per CAM (0 = off)",
        ge=0,
    )
    smooth_sigma: float = param(
        0.15,
        "SmoothGrad noise, as a fraction of the pixel range.",
        flag="--sigma",
        label="sigma",
        placeholder="SmoothGrad noise, fraction of the pixel range",
        ge=0.0,
    )
    checkpoint_s: float = param(10.0, "Seconds between result.json rewrites.", hidden=True, gt=0)
    cliff: dict[str, Any] | None = param(
        None, "Cliff detector settings (aggregate.cliff.CliffParams).", hidden=True
    )


class AnalysisKind(RunKind):
    name = NAME
    command = "analyze"
    title = "attention flow + CAM"
    help = "Attention flow per layer and group, the cliff, and maps for a few samples."
    Params = AnalysisParams
    job = "cliffscope.worker.analysis_job:AnalysisJob"
    cliff_method = CliffMethod("flow", "attention flow", "flow cliff", "magenta")
    panes = (
        Pane("flow", "Flow", "cliffscope.tui.widgets.flow_pane:FlowPane"),
        Pane("maps", "Maps", "cliffscope.tui.widgets.maps_pane:MapsPane"),
    )
    samples_view = "cliffscope.tui.sample_views:AnalysisSamples"
    report_module = "cliffscope.report.flow_report"
    curve = CurveSpec(
        title="image attention mass",
        text_title="image attention mass by depth",
        figure_title="attention flow to image tokens (dotted: cliff)",
        ylabel="image attention mass (dashed: even spread)",
    )


KIND = AnalysisKind()

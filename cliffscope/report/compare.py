"""Several runs side by side: curves on normalised depth (layer / L) and one table of cliffs.

Models of different depth (a 32-layer LLaVA-1.5, a 28-layer Qwen2-VL, a 4-layer demo) share
one x axis this way, so "the cliff sits at 40% of the depth" can be read straight off the plot.
Every run kind with a depth curve (`RunKind.curve`) gets a panel, every kind with a cliff
estimate a column.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cliffscope.kinds.base import RunKind
from cliffscope.kinds.registry import cliff_methods, kinds
from cliffscope.report import tables
from cliffscope.report.markdown import fenced, md_escape, md_image, md_link, md_table
from cliffscope.report.rundata import RunData
from cliffscope.vocab import (
    DEPTH_DECIMALS,
    MISSING,
    SCORE_DECIMALS,
    fmt,
    fmt_int,
    fmt_with_interval,
    interval_label,
)

COMPARE_SIZE = (12.0, 5.0)

Curve = tuple[str, list[float], list[float]]


def curves(runs: list[RunData], kind: RunKind) -> list[Curve]:
    """(label, xs, ys) of every run of `kind` that has a depth curve yet."""
    out = []
    for run in runs:
        curve = kind.depth_curve(run) if run.kind == kind.name else None
        if curve:
            out.append((run.label, *curve))
    return out


def curve_kinds() -> list[RunKind]:
    return [k for k in kinds() if k.curve is not None]


def compare_figure(runs: list[RunData], path: Path) -> Path:
    """One panel per kind with a depth curve (analysis: image attention mass against depth;
    sweep: score change against k / L). Each run's own cliff is a dotted vertical line in
    its colour, its reference level (even spread) a dashed one."""
    from cliffscope.report.figures import new_figure, save

    panels = curve_kinds()
    fig = new_figure(COMPARE_SIZE)
    axes = fig.subplots(1, max(len(panels), 1), squeeze=False)[0]
    for ax, kind in zip(axes, panels, strict=False):
        drawn = 0
        for index, run in enumerate(runs):
            curve = kind.depth_curve(run) if run.kind == kind.name else None
            if not curve:
                continue
            drawn += 1
            colour = f"C{index % 10}"
            ax.plot(*curve, marker="o", markersize=3, color=colour, label=run.label)
            own = (kind.cliff(run.res) or {}).get("layer")
            at = tables.depth(own, run.num_layers)
            if at is not None:
                ax.axvline(at, color=colour, linestyle=":", linewidth=1.2)
            reference = kind.depth_reference(run)
            if reference is not None:
                ax.axhline(reference, color=colour, linestyle="--", linewidth=0.8, alpha=0.6)
        if drawn:
            ax.legend(fontsize=7, loc="best")
        else:
            ax.text(0.5, 0.5, f"no {kind.name} runs", transform=ax.transAxes, ha="center")
        if kind.curve.zero_line:
            ax.axhline(0.0, color="gray", linewidth=0.8)
        ax.set_xlim(0, 1)
        ax.grid(alpha=0.3)
        ax.set_xlabel("normalised depth (layer / number of layers)")
        ax.set_ylabel(kind.curve.ylabel)
        ax.set_title(kind.curve.figure_title, fontsize=10)
    fig.tight_layout()
    return save(fig, path)


def _cliff_cell(layer: Any, dep: Any, verdict: Any) -> str:
    if layer is None:
        return md_escape(verdict) if verdict else MISSING
    return f"{fmt_int(layer)} ({fmt(dep, DEPTH_DECIMALS)})"


def compare_headers() -> list[str]:
    return [
        "run",
        "kind",
        "model",
        "task",
        "layers",
        "samples",
        "metric",
        f"score [{interval_label()} interval]",
        *(f"{m.short} (depth)" for _, m in cliff_methods()),
    ]


def compare_cells(rows: list[dict[str, Any]]) -> list[list[str]]:
    return [
        [
            md_escape(r["run"]),
            md_escape(r["kind"]),
            md_escape(r["model"] or MISSING),
            md_escape(r["task"] or MISSING),
            fmt_int(r["num_layers"]),
            fmt_int(r["n_samples"]),
            md_escape(r["metric"] or MISSING),
            fmt_with_interval(r["score"], r["score_lo"], r["score_hi"], SCORE_DECIMALS),
            *(
                _cliff_cell(r[f"{m.key}_cliff"], r[f"{m.key}_cliff_depth"], r[f"{m.key}_verdict"])
                for _, m in cliff_methods()
            ),
        ]
        for r in rows
    ]


def render_compare(
    runs: list[RunData],
    partners: dict[str, dict[str, RunData]],
    summaries: dict[str, str],
    figure: str | None,
    textplots: list[str],
    data: list[str],
) -> str:
    """compare.md: the side-by-side table, the depth overlay and links to each summary."""
    rows = tables.compare_rows(runs, partners)
    parts = [
        f"# cliffscope comparison of {len(runs)} runs",
        "Scores are the task score (analysis) or the untruncated baseline (sweep). A run's "
        "missing cliff is taken from the run of the other kind of the same model and task in "
        "this report. Depth is layer / number of layers.",
        md_table(compare_headers(), compare_cells(rows), right=(4, 5)),
    ]
    if figure:
        parts.append(md_image("runs on normalised depth", figure))
    parts.extend(fenced(t) for t in textplots)
    links = [f"- {md_link(run.id, summaries[run.id])}" for run in runs if run.id in summaries]
    if links:
        parts.append("## Runs\n\n" + "\n".join(links))
    if data:
        parts.append("Data: " + ", ".join(md_link(p.rsplit("/", 1)[-1], p) for p in data) + ".")
    return "\n\n".join(parts) + "\n"

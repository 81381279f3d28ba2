"""Several runs side by side: curves on normalised depth (layer / L) and one table of cliffs.

Models of different depth (a 32-layer LLaVA-1.5, a 28-layer Qwen2-VL, a 4-layer demo) share
one x axis this way, so "the cliff sits at 40% of the depth" can be read straight off the plot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
)

COMPARE_SIZE = (12.0, 5.0)
GROUP = "image"

Curve = tuple[str, list[float], list[float]]


def flow_curve(run: RunData, group: str = GROUP) -> tuple[list[float], list[float]] | None:
    """(depth, mean mass of `group`) of an analysis run, missing layers skipped."""
    if run.kind != "analysis" or not run.result:
        return None
    n = tables.flow_layers(run.res)
    means = tables.flow_series(run.res, "mass", group)["mean"]
    pts = [(layer / n, v) for layer, v in enumerate(means) if v is not None]
    return ([p[0] for p in pts], [p[1] for p in pts]) if pts else None


def sweep_curve(run: RunData) -> tuple[list[float], list[float]] | None:
    """(k / L, score - baseline) of a sweep run: 0 means "as good as untouched"."""
    if run.kind != "sweep" or not run.num_layers:
        return None
    base = (tables.baseline(run.res) or {}).get("score")
    pts = []
    for r in tables.sweep_rows(run.res):
        change = r["score"] - base if base is not None and r["score"] is not None else r["delta"]
        if r["depth"] is not None and change is not None:
            pts.append((r["depth"], change))
    return ([p[0] for p in pts], [p[1] for p in pts]) if pts else None


def curves(runs: list[RunData], kind: str, group: str = GROUP) -> list[Curve]:
    """(label, xs, ys) of every run that has a curve of `kind` ("flow" or "sweep")."""
    out = []
    for run in runs:
        curve = flow_curve(run, group) if kind == "flow" else sweep_curve(run)
        if curve:
            out.append((run.label, *curve))
    return out


def compare_figure(runs: list[RunData], path: Path, group: str = GROUP) -> Path:
    """Left: `group` attention mass against depth; right: score change against k / L.
    Each run's own cliff is a dotted vertical line in its colour."""
    from cliffscope.report.figures import new_figure, save

    fig = new_figure(COMPARE_SIZE)
    left, right = fig.subplots(1, 2)
    for ax, kind in ((left, "flow"), (right, "sweep")):
        drawn = 0
        for index, run in enumerate(runs):
            curve = flow_curve(run, group) if kind == "flow" else sweep_curve(run)
            if not curve:
                continue
            drawn += 1
            colour = f"C{index % 10}"
            ax.plot(*curve, marker="o", markersize=3, color=colour, label=run.label)
            row = (tables.flow_cliff if kind == "flow" else tables.sweep_cliff)(run)
            if row and row["depth"] is not None:
                ax.axvline(row["depth"], color=colour, linestyle=":", linewidth=1.2)
            spread = tables.even_spread(run.res).get(group) if kind == "flow" else None
            if spread is not None:
                ax.axhline(spread, color=colour, linestyle="--", linewidth=0.8, alpha=0.6)
        if drawn:
            ax.legend(fontsize=7, loc="best")
        else:
            ax.text(0.5, 0.5, f"no {kind} runs", transform=ax.transAxes, ha="center")
        ax.set_xlim(0, 1)
        ax.grid(alpha=0.3)
        ax.set_xlabel("normalised depth (layer / number of layers)")
    left.set_ylabel(f"{group} attention mass (dashed: even spread)")
    left.set_title(f"attention flow to {group} tokens (dotted: cliff)", fontsize=10)
    right.axhline(0.0, color="gray", linewidth=0.8)
    right.set_ylabel("score − baseline")
    right.set_title("truncation sweep: image removed from depth k / L on", fontsize=10)
    fig.tight_layout()
    return save(fig, path)


def compare_cells(rows: list[dict[str, Any]]) -> list[list[str]]:
    def cliff(layer: Any, dep: Any, verdict: Any) -> str:
        if layer is None:
            return md_escape(verdict) if verdict else MISSING
        return f"{fmt_int(layer)} ({fmt(dep, DEPTH_DECIMALS)})"

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
            cliff(r["flow_cliff"], r["flow_cliff_depth"], r["flow_verdict"]),
            cliff(r["sweep_cliff"], r["sweep_cliff_depth"], r["sweep_verdict"]),
        ]
        for r in rows
    ]


COMPARE_HEADERS = [
    "run",
    "kind",
    "model",
    "task",
    "layers",
    "samples",
    "metric",
    "score [95% interval]",
    "flow cliff (depth)",
    "sweep cliff (depth)",
]


def render_compare(
    runs: list[RunData],
    partners: dict[str, RunData | None],
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
        md_table(COMPARE_HEADERS, compare_cells(rows), right=(4, 5)),
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

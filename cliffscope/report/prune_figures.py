"""The prune kind's Pareto plot: score against FLOPs saved, as a PNG and as text.

One marker per strategy (its first letter in the text plot), the baseline at 0% saved, and the
Pareto front (`aggregate.prune.pareto_front`, read from result.json) joined by a line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cliffscope.report.prune_report import baseline, prune_rows

FIGURE_SIZE = (9.0, 6.0)
PNG_MARKERS = "osD^vP*Xh<>"


def _points(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Plottable points: the baseline first, then the branches with a score."""
    base = baseline(result)
    points = [{**base, "strategy": "base", "pareto": bool(base.get("pareto"))}] if base else []
    points += [
        r for r in prune_rows(result) if r["score"] is not None and r["flops_saved"] is not None
    ]
    return points


def _front(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted((p for p in points if p["pareto"]), key=lambda p: p["flops_saved"])


def _labels(points: list[dict[str, Any]]) -> dict[tuple[float, float], list[str]]:
    out: dict[tuple[float, float], list[str]] = {}
    for p in points:
        out.setdefault((100 * p["flops_saved"], p["score"]), []).append(str(p["name"]))
    return out


def pareto_figure(result: dict[str, Any], path: Path) -> Path:
    from cliffscope.report.figures import new_figure, save

    points = _points(result)
    fig = new_figure(FIGURE_SIZE)
    ax = fig.subplots()
    strategies = list(dict.fromkeys(p["strategy"] for p in points))
    for i, strategy in enumerate(strategies):
        mine = [p for p in points if p["strategy"] == strategy]
        xs = [100 * p["flops_saved"] for p in mine]
        colour = "gray" if strategy == "base" else f"C{i % 10}"
        ax.scatter(xs, [p["score"] for p in mine], marker=PNG_MARKERS[i % len(PNG_MARKERS)],
                   s=50, color=colour, label=strategy, zorder=3)  # fmt: skip
    for (x, y), names in _labels(points).items():  # branches at one point share a label
        ax.annotate(", ".join(names), (x, y), fontsize=7, xytext=(4, 4),
                    textcoords="offset points")  # fmt: skip
    front = _front(points)
    if front:
        ax.plot([100 * p["flops_saved"] for p in front], [p["score"] for p in front],
                color="black", linestyle="--", linewidth=1, label="Pareto front", zorder=2)  # fmt: skip
    ax.set_xlabel("decoder prefill FLOPs saved (%)")
    ax.set_ylabel(str(result.get("metric", "score")))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title(
        f"token pruning at layer {result.get('layer', '?')} (n = {result.get('n_samples', '?')})",
        fontsize=11,
    )
    fig.tight_layout()
    return save(fig, path)


def pareto_textplot(result: dict[str, Any]) -> str | None:
    """The same plot in plain text: each strategy's first letter, B the baseline, . the front."""
    from cliffscope.report.textplot import _legend, _render

    points = _points(result)
    if not points:
        return None
    strategies = list(dict.fromkeys(p["strategy"] for p in points))
    marks = {s: ("B" if s == "base" else _letter(s, strategies)) for s in strategies}
    front = _front(points)

    def draw(plt: Any) -> None:
        if len(front) > 1:
            plt.plot(
                [100 * p["flops_saved"] for p in front], [p["score"] for p in front], marker="."
            )
        for strategy in strategies:
            mine = [p for p in points if p["strategy"] == strategy]
            plt.scatter([100 * p["flops_saved"] for p in mine], [p["score"] for p in mine],
                        marker=marks[strategy])  # fmt: skip
        plt.xlabel("FLOPs saved (%)")
        plt.title(
            f"{result.get('metric', 'score')} against FLOPs saved, layer {result.get('layer', '?')}"
        )

    items = [(marks[s], "baseline" if s == "base" else s) for s in strategies]
    names = ", ".join(str(p["name"]) for p in front)
    return _render(draw, _legend([*items, (".", f"Pareto front: {names}")]))


def _letter(strategy: str, taken: list[str]) -> str:
    """The strategy's first letter, or the first one no earlier strategy uses."""
    used = {s[0] for s in taken[: taken.index(strategy)] if s != "base"} | {"B", "."}
    for char in strategy:
        if char not in used:
            return char
    return "?"

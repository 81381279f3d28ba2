"""Terminal-style plots as plain text (plotext), for Markdown ```text blocks and chats.

plotext keeps one global figure, so calls are serialised with a lock (the dashboard may export
from a thread). Output has no colour codes and no trailing spaces; each series has its own
marker character, named in the legend, so the plot reads without colour.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from cliffscope.report import tables

WIDTH = 76
HEIGHT = 20
MARKERS = {"system": "+", "image": "*", "instruction": "o", "output": "x"}
EDGE_MARKERS = "*o+x#@"
_LOCK = threading.Lock()


def _int_ticks(n: int, most: int = 9) -> list[int]:
    if n <= 0:
        return [0]
    step = max(1, -(-(n - 1) // (most - 1)))
    return list(range(0, n, step))


def _vline(plt: Any, x: float, ys: Sequence[float]) -> None:
    """A vertical marker drawn as data (plotext's own vline lands half a unit off)."""
    lo, hi = min(ys), max(ys)
    steps = HEIGHT * 2
    plt.scatter(
        [x] * (steps + 1), [lo + (hi - lo) * i / steps for i in range(steps + 1)], marker="|"
    )


def _legend(items: Sequence[tuple[str, str]]) -> str:
    return "   ".join(f"{mark} {label}" for mark, label in items)


def _render(draw: Any, legend: str = "") -> str:
    import plotext as plt

    with _LOCK:
        plt.clear_figure()
        plt.theme("clear")
        plt.plotsize(WIDTH, HEIGHT)
        draw(plt)
        text = plt.uncolorize(plt.build())
        plt.clear_figure()
    text = "\n".join(line.rstrip() for line in text.splitlines()).strip("\n")
    return text + (f"\n{legend}" if legend else "")


def _points(values: Sequence[float | None]) -> tuple[list[int], list[float]]:
    pairs = [(i, v) for i, v in enumerate(values) if v is not None]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def flow_textplot(result: dict[str, Any], measure: str = "mass") -> str | None:
    """Mean flow per group against layer, the cliff as a vertical line. None without data."""
    n = tables.flow_layers(result)
    series = {g: tables.flow_series(result, measure, g)["mean"] for g in tables.groups(result)}
    if not n or not any(v is not None for s in series.values() for v in s):
        return None
    cliff = (result.get("cliff") or {}).get("layer")

    every = [v for s in series.values() for v in s if v is not None]
    marks = [(MARKERS.get(g, "."), g) for g in series]

    def draw(plt: Any) -> None:
        for (mark, _), means in zip(marks[: len(series)], series.values(), strict=True):
            xs, ys = _points(means)
            if xs:
                plt.plot(xs, ys, marker=mark)
        if isinstance(cliff, int):
            _vline(plt, cliff, every)
        plt.xticks(_int_ticks(n))
        plt.xlabel("layer")
        plt.title(f"attention {measure} per group")

    cliff_mark = [("|", f"flow cliff (layer {cliff})")] if isinstance(cliff, int) else []
    return _render(draw, _legend(marks + cliff_mark))


def sweep_textplot(result: dict[str, Any]) -> str | None:
    """Score against k, with the baseline as a horizontal line and the sweep cliff."""
    rows = [r for r in tables.sweep_rows(result) if r["score"] is not None]
    if not rows:
        return None
    base = (tables.baseline(result) or {}).get("score")
    cliff = (result.get("cliff") or {}).get("layer")
    ks = [r["k"] for r in rows]

    scores = [r["score"] for r in rows]
    marks = [("*", "score truncated at k")]

    def draw(plt: Any) -> None:
        if base is not None:
            plt.plot([min(ks), max(ks)], [base, base], marker="-")
        plt.plot(ks, scores, marker="*")
        if isinstance(cliff, int):
            _vline(plt, cliff, scores + ([base] if base is not None else []))
        plt.xticks(_int_ticks(max(ks) + 1))
        plt.xlabel("k")
        plt.title(f"{result.get('metric', 'score')} with image tokens removed from layer k on")

    if base is not None:
        marks.append(("-", f"baseline {base:.3f}"))
    if isinstance(cliff, int):
        marks.append(("|", f"sweep cliff (k = {cliff})"))
    return _render(draw, _legend(marks))


def knockout_textplot(result: dict[str, Any]) -> str | None:
    """Relative change of p(answer) per window start, one marker per edge, the cliff."""
    from cliffscope.report import knockout_report as ko

    which, starts = ko.measure(result), ko.starts(result)
    curves = {e: ko.series(result, which, e)["mean"] for e in ko.edges(result)}
    every = [v for c in curves.values() for v in c if v is not None]
    if not starts or not every:
        return None
    cliff = (result.get("cliff") or {}).get("layer")
    marks = [(EDGE_MARKERS[i % len(EDGE_MARKERS)], edge) for i, edge in enumerate(curves)]

    def draw(plt: Any) -> None:
        plt.plot([min(starts), max(starts)], [0.0, 0.0], marker="-")
        for (mark, _), values in zip(marks, curves.values(), strict=True):
            pairs = [(s, v) for s, v in zip(starts, values, strict=True) if v is not None]
            if pairs:
                plt.plot([p[0] for p in pairs], [p[1] for p in pairs], marker=mark)
        if isinstance(cliff, int):
            _vline(plt, cliff, [*every, 0.0])
        plt.xticks(_int_ticks(max(starts) + 1))
        plt.xlabel("window start l")
        plt.title(f"relative change of p({ko.MEASURES[which]}) with the edge blocked")

    cliff_mark = [("|", f"knockout cliff (l = {cliff})")] if isinstance(cliff, int) else []
    return _render(draw, _legend([*marks, *cliff_mark, ("-", "no change")]))


def depth_textplot(
    curves: Sequence[tuple[str, Sequence[float], Sequence[float]]], title: str
) -> str | None:
    """Several runs on normalised depth: (label, depths, values) per run."""
    curves = [c for c in curves if len(c[1])]
    if not curves:
        return None
    marks = "*o+x#@%&"

    legend = [(marks[i % len(marks)], label) for i, (label, _, _) in enumerate(curves)]

    def draw(plt: Any) -> None:
        for (mark, _), (_, xs, ys) in zip(legend, curves, strict=True):
            plt.plot(list(xs), list(ys), marker=mark)
        plt.xlim(0, 1)
        plt.xlabel("normalised depth (layer / number of layers)")
        plt.title(title)

    return _render(draw, "\n".join(_legend([item]) for item in legend))

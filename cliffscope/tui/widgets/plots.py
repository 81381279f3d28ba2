"""Plot widgets. Each owns its plotext figure and redraws it from scratch on new data.

They draw what `result.json` says (means, intervals, cliffs found by the aggregator); nothing
here estimates anything. Intervals are dotted lines in the colour of their curve.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual_plotext import PlotextPlot

from cliffscope.vocab import GROUP_COLOURS, edge_colour

RUN_COLOURS = ("red", "cyan", "green", "orange", "magenta", "blue", "yellow", "white")
OWN_CLIFF = "white"  # a plot's own cliff when its kind does not say

#: another kind's cliff estimate to mark: (layer, name, colour)
Other = tuple[int, str, str]


def legend_text(names: list[str], colours: dict[str, str] = GROUP_COLOURS) -> Text:
    """`━━ system  ━━ image …` in the plot's own terminal colours.

    plotext draws its legend over the top-left corner, where the first layers' curves are;
    the flow pane prints this line above the plot instead.
    """
    from plotext._dict import color_codes

    text = Text()
    for name in names:
        code = color_codes.get(colours.get(name, ""), None)
        text.append("━━ ", style=f"color({code})" if isinstance(code, int) else "")
        text.append(f"{name}  ")
    return text


def _numbers(values: Any) -> list[float] | None:
    if not isinstance(values, list) or not values:
        return None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return None
    return [float(v) for v in values]


class _Figure(PlotextPlot):
    """Keeps the data it was given and replots whenever that changes."""

    DEFAULT_CSS = "_Figure { height: 1fr; min-height: 8; }"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.series: dict[str, tuple[list[float], list[float]]] = {}  # what is drawn, by name
        self.markers: dict[str, float] = {}  # vertical/horizontal reference lines, by name
        self._version = 0
        self._rendered: tuple[tuple, Any] | None = None
        self._tick_span: tuple[float, float] | None = None  # what the round y ticks must span

    def render(self) -> Any:
        """plotext rebuilds the whole figure on every render; reuse it until data, size or
        theme change (a tab switch or an unrelated repaint then costs nothing)."""
        key = (self._version, self.size, self.app.theme, self.theme)
        if self._rendered is None or self._rendered[0] != key:
            self._apply_yticks()  # for the size it is drawn at, not the size at replot time
            self._rendered = (key, super().render())
        return self._rendered[1]

    def refresh(self, *args: Any, **kwargs: Any) -> Any:
        self._version += 1
        return super().refresh(*args, **kwargs)

    def _start(self, title: str = "") -> Any:
        plt = self.plt
        plt.clear_figure()
        self._tick_span = None
        plt.title(title)
        self.series, self.markers = {}, {}
        return plt

    def _line(self, name: str, xs: list, ys: list, colour: str, label: str | None = None) -> None:
        self.series[name] = (list(xs), list(ys))
        self.plt.plot(xs, ys, color=colour, marker="braille", label=label)

    def _round_yticks(self, values: list[float]) -> None:
        """Ticks at round values (0.25, 0.5 ...) spanning ``values``; plotext's own ticks sit
        on whichever rows a short plot has and read like 0.18, 0.45, 0.59."""
        finite = [v for v in values if isinstance(v, (int, float)) and v == v]
        if finite:
            self._tick_span = (min(finite), max(finite))

    def _apply_yticks(self) -> None:
        """How many ticks fit depends on the height, which layout may change after the data
        arrived (a table below gets its rows), so they are placed when the figure is drawn."""
        if self._tick_span is None:
            return
        rows = max(2, (self.size.height - 4) // 2)
        ticks = nice_ticks(*self._tick_span, rows)
        self.plt.yticks(ticks, [_tick_label(t, ticks) for t in ticks])

    def _empty(self, message: str) -> None:
        plt = self._start(message)
        plt.xticks([])
        plt.yticks([])
        self.refresh()


class FlowPlot(_Figure):
    """Attention to each token group per layer (mean and interval), the cliff as a vertical
    line in the colour of its estimate."""

    def show(
        self, result: dict[str, Any] | None, measure: str = "mass", colour: str = OWN_CLIFF
    ) -> None:
        flow = ((result or {}).get("flow") or {}).get(measure) or {}
        if not flow:
            self._empty("attention flow: no result yet")
            return
        cliff = (result or {}).get("cliff") or {}
        layer = cliff.get("layer")
        title = f"attention {measure} per layer"
        if isinstance(layer, int):
            title += f"  │ cliff {layer} [{cliff.get('lo', '?')}–{cliff.get('hi', '?')}]"
        elif cliff.get("verdict"):
            title += f"  ({cliff['verdict']})"
        plt = self._start(title)
        num_layers = 0
        for group, group_colour in GROUP_COLOURS.items():
            series = flow.get(group) or {}
            mean = _numbers(series.get("mean"))
            if mean is None:
                continue
            xs = list(range(len(mean)))
            num_layers = max(num_layers, len(mean))
            for bound in ("lo", "hi"):
                values = _numbers(series.get(bound))
                if values is not None and len(values) == len(mean):
                    plt.plot(xs, values, color=group_colour, marker="dot")
            self._line(group, xs, mean, group_colour)  # legend: `legend_text`, beside the plot
        even = (result or {}).get("even_spread") or {}
        if measure == "mass" and isinstance(even.get("image"), (int, float)):
            plt.hline(float(even["image"]), "gray")
            self.markers["even_spread"] = float(even["image"])
        if isinstance(layer, int):
            plt.vline(layer, colour)
            self.markers["cliff"] = layer
        drawn = [v for x in flow.values() if isinstance(x, dict) for k in ("mean", "lo", "hi")
                 for v in _numbers(x.get(k)) or []]  # fmt: skip
        self._round_yticks([*drawn, *self.markers.values()] if drawn else [])
        plt.xlabel("layer   (grey: image share of positions, even spread)")
        if num_layers:
            plt.xticks(_ticks(num_layers - 1))
        self.refresh()


class SweepPlot(_Figure):
    """Task score against the truncation layer k, with the baseline, the sweep's cliff and
    the other kinds' estimates (each in its colour)."""

    def show(
        self, result: dict[str, Any] | None, others: list[Other] = (), colour: str = OWN_CLIFF
    ) -> None:
        points = [p for p in (result or {}).get("points") or [] if isinstance(p.get("k"), int)]
        if not points:
            self._empty("truncation sweep: no points yet")
            return
        points.sort(key=lambda p: p["k"])
        baseline = ((result or {}).get("baseline") or {}).get("score")
        cliff = ((result or {}).get("cliff") or {}).get("layer")
        title = f"{(result or {}).get('metric', 'score')} vs truncation layer k"
        if isinstance(cliff, int):
            title += f"  │ sweep cliff {cliff}"
        for layer, name, _ in others:
            title += f"  │ {name} {layer}"
        plt = self._start(title)
        ks = [p["k"] for p in points]
        if isinstance(baseline, (int, float)):
            plt.hline(float(baseline), "gray")
            for bound in ("lo", "hi"):
                if all(isinstance(p.get(bound), (int, float)) for p in points):
                    plt.plot(ks, [baseline + p[bound] for p in points], color="cyan", marker="dot")
        scores = [
            p.get("score") if isinstance(p.get("score"), (int, float)) else 0.0 for p in points
        ]
        self._line("score", ks, scores, "cyan")
        plt.scatter(ks, scores, color="cyan", marker="●")
        if isinstance(baseline, (int, float)):
            self.markers["baseline"] = float(baseline)
        if isinstance(cliff, int):
            plt.vline(cliff, colour)
            self.markers["cliff"] = cliff
        for layer, name, other_colour in others:
            plt.vline(layer, other_colour)
            self.markers[name] = layer
        drawn = list(scores)
        if isinstance(baseline, (int, float)):
            drawn.append(float(baseline))
            for p in points:
                drawn += [
                    baseline + p[b] for b in ("lo", "hi") if isinstance(p.get(b), (int, float))
                ]
        self._round_yticks(drawn)
        num_layers = (result or {}).get("num_layers")
        top = num_layers if isinstance(num_layers, int) else max(ks)
        plt.xlim(0, max(top, 1))
        plt.xticks(_ticks(top))
        plt.xlabel("k: image tokens removed from layer k on   (grey: baseline)")
        self.refresh()


class KnockoutPlot(_Figure):
    """Relative change of the answer's probability per window start, one curve per edge (in
    `vocab.edge_colour`), zero and the tolerance, the knockout cliff and the other kinds'
    estimates (each in its colour)."""

    def show(
        self,
        result: dict[str, Any] | None,
        curves: dict[str, list[float | None]],
        starts: list[int],
        others: list[Other] = (),
        colour: str = OWN_CLIFF,
    ) -> None:
        drawn = [v for values in curves.values() for v in values if v is not None]
        if not starts or not drawn:
            self._empty("attention knockout: no sample finished yet")
            return
        result = result or {}
        cliff = (result.get("cliff") or {}).get("layer")
        which = "first" if result.get("cliff_on") == "first" else "answer"
        base = (result.get("baseline") or {}).get(f"p_{which}")
        title = f"Δp({which}) / p, window {result.get('window', '?')}"
        if isinstance(base, (int, float)):
            title += f", baseline p {base:.3f}"
        if isinstance(cliff, int):
            title += f"  │ knockout cliff {cliff}"
        for layer, name, _ in others:
            title += f"  │ {name} {layer}"
        plt = self._start(title)
        plt.hline(0.0, "gray")
        self.markers["zero"] = 0.0
        tolerance = result.get("tolerance")
        if isinstance(tolerance, (int, float)):
            plt.hline(-float(tolerance), "gray")
            self.markers["tolerance"] = -float(tolerance)
        for index, (edge, values) in enumerate(curves.items()):
            pairs = [(s, v) for s, v in zip(starts, values, strict=False) if v is not None]
            if pairs:
                self._line(edge, [p[0] for p in pairs], [p[1] for p in pairs], edge_colour(index))
        if isinstance(cliff, int):
            plt.vline(cliff, colour)
            self.markers["cliff"] = cliff
        for layer, name, other_colour in others:
            plt.vline(layer, other_colour)
            self.markers[name] = layer
        self._round_yticks([*drawn, *self.markers.values()])
        top = result.get("num_layers")
        top = top - 1 if isinstance(top, int) and top > 0 else max(starts)
        plt.xlim(0, max(top, 1))
        plt.xticks(_ticks(top))
        plt.xlabel("window start l   (grey: no change, and the tolerance)")
        self.refresh()


class DepthPlot(_Figure):
    """Several runs' curves on normalised depth (layer / L), one colour per run."""

    def show(
        self, curves: list[tuple[str, list[float], list[float]]], title: str, zero: bool = False
    ) -> None:
        if not curves:
            self._empty(title + ": no run of this kind")
            return
        plt = self._start(title)
        if zero:
            plt.hline(0.0, "gray")
        for i, (label, xs, ys) in enumerate(curves):
            self._line(label, xs, ys, RUN_COLOURS[i % len(RUN_COLOURS)], label=label)
        plt.xlim(0, 1)
        plt.xlabel("normalised depth (layer / number of layers)")
        self.refresh()


def _ticks(top: int) -> list[int]:
    """At most ~12 integer ticks from 0 to `top`."""
    step = max(1, (top + 11) // 12)
    ticks = list(range(0, top + 1, step))
    if ticks[-1] != top:
        ticks.append(top)
    return ticks


def nice_ticks(lo: float, hi: float, most: int) -> list[float]:
    """Up to ``most`` ticks inside [lo, hi] at multiples of 1, 2, 2.5 or 5 x 10^n."""
    import math

    if hi - lo < 1e-12:
        return [lo]
    most = max(2, most)
    power = 10 ** math.floor(math.log10((hi - lo) / most))
    for factor in (1, 2, 2.5, 5, 10, 20, 25, 50, 100):
        step = factor * power
        first, last = math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9)
        if last - first + 1 <= most:
            return [round(i * step, 10) for i in range(first, last + 1)] or [lo, hi]
    return [lo, hi]


def _tick_label(value: float, ticks: list[float]) -> str:
    if len(ticks) < 2:
        return f"{value:.3g}"
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    digits = 0 if step >= 1 else 1 if step >= 0.1 else 2 if step >= 0.01 else 3
    if digits and any(round(t * 10**digits) != t * 10**digits for t in ticks):
        digits += 1  # 0.25 steps need two decimals
    return f"{value:.{digits}f}"

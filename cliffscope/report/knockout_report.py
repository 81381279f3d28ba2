"""The knockout kind's part of every output: its curves per edge, the table of window starts,
its figure and data files.

`kinds.knockout` names this module as its `report_module`: the exporter, the Markdown summary,
`runs show`, the compare views and the dashboard's Knockout pane read a knockout result through
these functions; the other kinds' cliffs arrive as estimate rows, so a partner is marked
without being named.
"""

from __future__ import annotations

from typing import Any

from cliffscope.kinds.base import LayerTable
from cliffscope.kinds.knockout import NAME
from cliffscope.report.assets import Assets, Figures
from cliffscope.report.markdown import fenced, md_escape, md_image, md_table
from cliffscope.report.rundata import RunData
from cliffscope.vocab import MISSING, finite, fmt, interval_label, result_alpha

KEY = NAME  # summary.json's key, the figure's and text plot's name in the assets
MEASURES = {"answer": "whole answer", "first": "first answer token"}
FIELDS = ("measure", "edge", "start", "end", "depth", "mean", "lo", "hi")


def pct(value: Any, signed: bool = True) -> str:
    """`-78.5%` (a relative change), `—` when missing."""
    x = finite(value)
    return MISSING if x is None else (f"{x:+.1%}" if signed else f"{x:.1%}")


def edges(result: dict[str, Any]) -> list[str]:
    listed = result.get("edges")
    return [str(e) for e in listed] if isinstance(listed, list) else []


def starts(result: dict[str, Any]) -> list[int]:
    listed = result.get("starts")
    return [s for s in listed if isinstance(s, int)] if isinstance(listed, list) else []


def measure(result: dict[str, Any]) -> str:
    """The probability the run's cliff reads ("answer" or "first")."""
    value = result.get("cliff_on")
    return value if value in MEASURES else "answer"


def window_end(result: dict[str, Any], start: int) -> int | None:
    """The last layer a window starting at `start` blocks (clipped at L)."""
    window, n = result.get("window"), result.get("num_layers")
    if not isinstance(window, int) or not isinstance(n, int):
        return None
    return min(start + window, n) - 1


def series(result: dict[str, Any], which: str, edge: str) -> dict[str, list[float | None]]:
    """{"mean", "lo", "hi"}: one value per window start (None where missing)."""
    stats = ((result.get("changes") or {}).get(which) or {}).get(edge) or {}
    n = len(starts(result))
    out = {}
    for key in ("mean", "lo", "hi"):
        values = stats.get(key) if isinstance(stats.get(key), list) else []
        out[key] = [finite(values[i]) if i < len(values) else None for i in range(n)]
    return out


def has_curves(result: dict[str, Any]) -> bool:
    return any(
        v is not None for e in edges(result) for v in series(result, measure(result), e)["mean"]
    )


def long_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (measure, edge, window start), in `FIELDS` order: the CSV and JSON shape."""
    n = result.get("num_layers") if isinstance(result.get("num_layers"), int) else None
    rows = []
    for which in MEASURES:
        for edge in edges(result):
            data = series(result, which, edge)
            for i, start in enumerate(starts(result)):
                rows.append(
                    {
                        "measure": which,
                        "edge": edge,
                        "start": start,
                        "end": window_end(result, start),
                        "depth": start / n if n else None,
                        "mean": data["mean"][i],
                        "lo": data["lo"][i],
                        "hi": data["hi"][i],
                    }
                )
    return rows


def _blocks(result: dict[str, Any], start: int) -> str:
    end = window_end(result, start)
    return str(start) if end in (None, start) else f"{start}–{end}"


def layer_table(result: dict[str, Any]) -> LayerTable | None:
    """Mean relative change of p(cliff measure) per window start and edge (`runs show`)."""
    if not has_curves(result):
        return None
    which, cliff = measure(result), (result.get("cliff") or {}).get("layer")
    names = edges(result)
    title = f"relative change of p({MEASURES[which]}) per window start l"
    table = LayerTable(title, ["l", "layers", *names])
    by_edge = {e: series(result, which, e)["mean"] for e in names}
    for i, start in enumerate(starts(result)):
        marker = " ◀ cliff" if start == cliff else ""
        cells = [pct(by_edge[e][i]) for e in names]
        table.rows.append([f"{start}{marker}", _blocks(result, start), *cells])
    return table


def depth_curve(run: RunData) -> tuple[list[float], list[float]] | None:
    """(l / L, the cliff edges' worst relative change): 0 means "blocking costs nothing"."""
    curve = run.res.get("cliff_curve")
    if not run.num_layers or not isinstance(curve, list):
        return None
    pts = [(s / run.num_layers, finite(v)) for s, v in zip(starts(run.res), curve, strict=False)]
    pts = [(x, y) for x, y in pts if y is not None]
    return ([p[0] for p in pts], [p[1] for p in pts]) if pts else None


def sections(run: RunData, estimates: list[dict[str, Any]], assets: Assets) -> list[str]:
    return [knockout_section(run, assets)]


def data(run: RunData) -> dict[str, Any]:
    res = run.res
    return {
        KEY: {
            "edges": edges(res),
            "window": res.get("window"),
            "cliff_on": measure(res),
            "baseline": res.get("baseline"),
            "rows": long_rows(res),
        }
    }


def csv_files(numbers: dict[str, Any]) -> dict[str, tuple[list[dict], list[str]]]:
    return {f"{KEY}.csv": (numbers[KEY]["rows"], list(FIELDS))}


def figures(run: RunData, estimates: list[dict[str, Any]], figs: Figures, assets: Assets) -> None:
    """knockout.png (the other kinds' cliffs marked) and the knockout text plot."""
    from cliffscope.report import figures as draw
    from cliffscope.report import tables, textplot

    res = run.res
    if not has_curves(res):
        return
    others = tables.other_estimates(estimates, run)
    if link := figs.draw(draw.knockout_figure, f"{KEY}.png", res, others=others):
        assets.figures[KEY] = link
    text = textplot.knockout_textplot(res)
    if text:
        assets.textplots[KEY] = text


def knockout_section(run: RunData, assets: Assets) -> str:
    result = run.res
    which = measure(result)
    window = md_escape(result.get("window", "?"))
    parts = [f"## Attention knockout (window {window}, engine {md_escape(result.get('engine'))})"]
    if KEY in assets.figures:
        parts.append(md_image("relative change of the answer's probability", assets.figures[KEY]))
    if KEY in assets.textplots:
        parts.append(fenced(assets.textplots[KEY]))
    base = result.get("baseline") or {}
    if finite(base.get("p_answer")) is not None:
        parts.append(
            f"Baseline: mean p(whole answer) {fmt(base['p_answer'])}, p(first answer token) "
            f"{fmt(base.get('p_first'))} over {result.get('n_samples')} samples"
            + (
                f" ({result['n_empty']} without an answer left out)"
                if result.get("n_empty")
                else ""
            )
            + "."
        )
    if not has_curves(result):
        parts.append("No sample finished yet.")
        return "\n\n".join(parts)
    names = edges(result)
    level = interval_label(result_alpha(result))
    by_edge = {e: series(result, which, e) for e in names}
    cells = [
        [str(start), _blocks(result, start)]
        + [
            f"{pct(by_edge[e]['mean'][i])} [{pct(by_edge[e]['lo'][i])}, {pct(by_edge[e]['hi'][i])}]"
            for e in names
        ]
        for i, start in enumerate(starts(result))
    ]
    parts.append(
        f"Relative change of p({MEASURES[which]}) with the edge blocked in layers l .. l+w−1 "
        f"(mean [{level} interval]; the target's queries lose the source's keys; "
        f"the other probability is in data/{KEY}.csv):\n\n"
        + md_table(["l", "layers", *names], cells, right=tuple(range(len(names) + 2)))
    )
    return "\n\n".join(parts)

"""The sweep kind's part of every output: the table of k, its figure, data files.

`kinds.sweep` names this module as its `report_module`: the exporter, the Markdown summary,
`runs show` and the compare views call these functions by name; the other
kinds' cliffs arrive as estimate rows, so a partner is marked without being named.
"""

from __future__ import annotations

from typing import Any

from cliffscope.kinds.base import LayerTable
from cliffscope.kinds.sweep import NAME
from cliffscope.report import tables
from cliffscope.report.assets import Assets, Figures
from cliffscope.report.markdown import fenced, md_escape, md_image, md_table
from cliffscope.report.rundata import RunData
from cliffscope.vocab import (
    DEPTH_DECIMALS,
    LATENCY_DECIMALS,
    SCORE_DECIMALS,
    finite,
    fmt,
    fmt_int,
    fmt_interval,
    fmt_pct,
    fmt_signed,
    fmt_with_interval,
    interval_label,
    result_alpha,
)

KEY = NAME  # summary.json's key, the figure's and text plot's name in the assets
HEADERS = [
    "k",
    "depth",
    "score",
    "Δ vs baseline",
    "Δ 95% interval",
    "flips to wrong",
    "flips to right",
    "changed answers",
    "FLOPs saved",
    "KV saved",
    "latency ms",
]


def baseline_line(label: str, base: dict[str, Any], latency: Any, what: str, batch: Any) -> str:
    """The baseline's sentence in a sweep-like kind's report: score with its interval, then the
    measured latency (`what`) and its batch size when known."""
    line = f"Baseline ({label}): " + fmt_with_interval(
        base["score"], base.get("lo"), base.get("hi"), SCORE_DECIMALS
    )
    if finite(latency) is not None:
        line += f"; {what} {fmt(latency, LATENCY_DECIMALS)} ms"
        if isinstance(batch, int):
            line += f" per batch of {batch}"
    return line + "."


def change_cells(r: dict[str, Any]) -> list[str]:
    """A row's score, Δ against the baseline, its interval and the answer flips, as text."""
    return [
        fmt(r["score"], SCORE_DECIMALS),
        fmt_signed(r["delta"]),
        fmt_interval(r["lo"], r["hi"], SCORE_DECIMALS),
        fmt_int(r["flips_to_wrong"]),
        fmt_int(r["flips_to_right"]),
        fmt_int(r["changed"]),
    ]


def notes(result: dict[str, Any]) -> list[str]:
    """The engine check of a half-precision sweep (`worker.engine_check`), when it ran."""
    check = result.get("verification")
    if not isinstance(check, dict) or not check.get("answers"):
        return []
    line = (
        f"engine check ({check.get('dtype')}): the shared engine agrees with the naive one on "
        f"{check['agreeing']}/{check['answers']} answers ({fmt_pct(check.get('agreement'), 1)}) "
        f"of {check['n_samples']} re-run samples"
    )
    worst = finite(check.get("max_relative_margin"))
    if worst is not None:
        line += (
            f"; every disagreement is within {fmt_pct(worst, 0)} of the logit scale (a near tie)"
        )
    return [line]


def layer_table(result: dict[str, Any]) -> LayerTable | None:
    """Score per truncation layer k with its paired interval, flips and savings."""
    rows = tables.sweep_rows(result)
    if not rows:
        return None
    base = tables.baseline(result) or {}
    cliff = (result.get("cliff") or {}).get("layer")
    level = interval_label(result_alpha(result))
    columns = ["k", "score", "Δ vs base", f"{level} interval", "→wrong", "→right", "FLOPs saved"]
    table = LayerTable("per truncation layer k", columns)
    for row in rows:
        marker = " ◀ cliff" if row["k"] == cliff else ""
        table.rows.append(
            [
                f"{row['k']}{marker}",
                fmt(row["score"], 3),
                fmt_signed(row["delta"], 3),
                fmt_interval(row["lo"], row["hi"], 3, signed=True),
                fmt_int(row["flips_to_wrong"]),
                fmt_int(row["flips_to_right"]),
                fmt_pct(row["flops_saved"], 0),
            ]
        )
    table.rows.append(["base", fmt(base.get("score"), 3), "", "", "", "", ""])
    return table


def depth_curve(run: RunData) -> tuple[list[float], list[float]] | None:
    """(k / L, score - baseline): 0 means "as good as untouched"."""
    if not run.num_layers:
        return None
    base = (tables.baseline(run.res) or {}).get("score")
    pts = []
    for r in tables.sweep_rows(run.res):
        change = r["score"] - base if base is not None and r["score"] is not None else r["delta"]
        if r["depth"] is not None and change is not None:
            pts.append((r["depth"], change))
    return ([p[0] for p in pts], [p[1] for p in pts]) if pts else None


def sections(run: RunData, estimates: list[dict[str, Any]], assets: Assets) -> list[str]:
    return [sweep_section(run, assets)]


def data(run: RunData) -> dict[str, Any]:
    return {KEY: {"baseline": tables.baseline(run.res), "points": tables.sweep_rows(run.res)}}


def csv_files(numbers: dict[str, Any]) -> dict[str, tuple[list[dict], list[str]]]:
    return {f"{KEY}.csv": (numbers[KEY]["points"], list(tables.SWEEP_FIELDS))}


def figures(run: RunData, estimates: list[dict[str, Any]], figs: Figures, assets: Assets) -> None:
    """sweep.png (with the other kinds' cliffs marked) and the sweep text plot."""
    from cliffscope.report import figures as draw
    from cliffscope.report import textplot

    res = run.res
    if not tables.sweep_rows(res):
        return
    others = tables.other_estimates(estimates, run)
    if link := figs.draw(draw.sweep_figure, f"{KEY}.png", res, others=others):
        assets.figures[KEY] = link
    text = textplot.sweep_textplot(res)
    if text:
        assets.textplots[KEY] = text


def sweep_section(run: RunData, assets: Assets) -> str:
    result = run.res
    mode = md_escape(result.get("mode", "?"))
    if result.get("keep_ratio") is not None:
        mode += f", keep ratio {md_escape(result['keep_ratio'])}"
    if result.get("engine"):
        mode += f", engine {md_escape(result['engine'])}"
    parts = [f"## Truncation sweep (mode {mode})"]
    if KEY in assets.figures:
        parts.append(md_image("score against k", assets.figures[KEY]))
    if KEY in assets.textplots:
        parts.append(fenced(assets.textplots[KEY]))
    base = tables.baseline(result)
    if base:
        latency, batch = result.get("latency_full_ms"), result.get("latency_batch_size")
        parts.append(baseline_line("no truncation", base, latency, "full-model latency", batch))
    parts += [note[0].upper() + note[1:] + "." for note in notes(result)]
    rows = tables.sweep_rows(result)
    if not rows:
        parts.append("No truncation points finished yet.")
        return "\n\n".join(parts)
    cells = [
        [
            str(r["k"]),
            fmt(r["depth"], DEPTH_DECIMALS),
            *change_cells(r),
            fmt_pct(r["flops_saved"]),
            fmt_pct(r["kv_saved"]),
            fmt(r["latency_ms"], LATENCY_DECIMALS),
        ]
        for r in rows
    ]
    headers = [h.replace("95%", interval_label(result_alpha(result))) for h in HEADERS]
    parts.append(
        "Image tokens removed from layer k on (k = 0: no image; k = L: untouched model):\n\n"
        + md_table(headers, cells, right=tuple(range(len(headers))))
    )
    return "\n\n".join(parts)

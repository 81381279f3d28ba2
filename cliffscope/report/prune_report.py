"""The prune kind's part of every output: the table of branches, the Pareto plot, data files.

`kinds.prune` names this module as its `report_module`: the exporter, the Markdown summary and
`runs show` call these functions by name. `prune_rows` is the one reading of result.json's
branches (the dashboard's Prune tab uses it too); the figures are in `report.prune_figures`.
"""

from __future__ import annotations

from typing import Any

from cliffscope.kinds.base import LayerTable
from cliffscope.kinds.prune import NAME
from cliffscope.report.assets import Assets, Figures
from cliffscope.report.markdown import fenced, md_escape, md_image, md_table
from cliffscope.report.rundata import RunData
from cliffscope.report.sweep_report import baseline_line, change_cells
from cliffscope.vocab import (
    LATENCY_DECIMALS,
    finite,
    fmt,
    fmt_int,
    fmt_interval,
    fmt_pct,
    fmt_signed,
    interval_label,
    result_alpha,
)

KEY = NAME  # summary.json's key, the figure's and text plot's name in the assets
FIELDS = (
    "name", "strategy", "budget", "k", "score", "delta", "lo", "hi", "flips_to_wrong",
    "flips_to_right", "changed", "flops_saved", "kv_saved", "kept_share", "latency_ms",
    "x_faster", "pareto",
)  # fmt: skip
HEADERS = [
    "branch", "score", "Δ vs baseline", "Δ 95% interval", "flips to wrong", "flips to right",
    "changed answers", "image kept", "FLOPs saved", "KV saved", "prefill ms", "× faster", "front",
]  # fmt: skip


def prune_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One row of plain values per branch, in the run's order; `x_faster` against the
    untouched prefill."""
    base_ms = finite((result.get("baseline") or {}).get("latency_ms"))
    rows = []
    for branch in result.get("branches") or []:
        if not isinstance(branch, dict):
            continue
        row = {f: branch.get(f) for f in FIELDS}
        ms = finite(branch.get("latency_ms"))
        row["x_faster"] = round(base_ms / ms, 3) if base_ms and ms else None
        row["pareto"] = bool(branch.get("pareto"))
        rows.append(row)
    return rows


def baseline(result: dict[str, Any]) -> dict[str, Any] | None:
    base = result.get("baseline")
    return base if isinstance(base, dict) and base.get("score") is not None else None


def notes(result: dict[str, Any]) -> list[str]:
    """Branches asked for that did not run, with the reason."""
    return [
        f"{item.get('branch')} skipped: {item.get('reason')}"
        for item in result.get("refused") or []
        if isinstance(item, dict)
    ]


def layer_table(result: dict[str, Any]) -> LayerTable | None:
    """`runs show`: score per branch with its paired interval, flips, FLOPs saved and prefill
    time; ◆ marks the Pareto front."""
    rows = prune_rows(result)
    if not rows:
        return None
    level = interval_label(result_alpha(result))
    columns = ["branch", "score", "Δ", f"{level} interval", "→wrong", "→right", "FLOPs", "ms"]
    title = f"per branch at layer {result.get('layer', '?')} (FLOPs saved, prefill ms; ◆ front)"
    table = LayerTable(title, columns)
    for row in rows:
        table.rows.append(
            [
                str(row["name"]) + (" ◆" if row["pareto"] else ""),
                fmt(row["score"], 3),
                fmt_signed(row["delta"], 3),
                fmt_interval(row["lo"], row["hi"], 3, signed=True),
                fmt_int(row["flips_to_wrong"]),
                fmt_int(row["flips_to_right"]),
                fmt_pct(row["flops_saved"], 0),
                fmt(row["latency_ms"], LATENCY_DECIMALS),
            ]
        )
    base = baseline(result) or {}
    name = "base" + (" ◆" if base.get("pareto") else "")
    ms = fmt(base.get("latency_ms"), LATENCY_DECIMALS)
    table.rows.append([name, fmt(base.get("score"), 3), "", "", "", "", "0%", ms])
    return table


def sections(run: RunData, estimates: list[dict[str, Any]], assets: Assets) -> list[str]:
    return [prune_section(run, assets)]


def data(run: RunData) -> dict[str, Any]:
    res = run.res
    return {
        KEY: {"baseline": baseline(res), "branches": prune_rows(res), "pareto": res.get("pareto")}
    }


def csv_files(numbers: dict[str, Any]) -> dict[str, tuple[list[dict], list[str]]]:
    return {f"{KEY}.csv": (numbers[KEY]["branches"], list(FIELDS))}


def figures(run: RunData, estimates: list[dict[str, Any]], figs: Figures, assets: Assets) -> None:
    """prune.png (score against FLOPs saved, the front joined) and its text plot."""
    from cliffscope.report import prune_figures

    if not prune_rows(run.res):
        return
    if link := figs.draw(prune_figures.pareto_figure, f"{KEY}.png", run.res):
        assets.figures[KEY] = link
    text = prune_figures.pareto_textplot(run.res)
    if text:
        assets.textplots[KEY] = text


def _settings(result: dict[str, Any]) -> str:
    parts = [f"layer K = {md_escape(result.get('layer', '?'))}"]
    if result.get("schedule"):
        parts.append(f"pyramid schedule {md_escape(result['schedule'])}")
    parts.append(f"random seed {md_escape(result.get('random_seed', 0))}")
    if result.get("engine"):
        parts.append(f"engine {md_escape(result['engine'])}")
    return ", ".join(parts)


def prune_section(run: RunData, assets: Assets) -> str:
    result = run.res
    parts = [f"## Token pruning ({_settings(result)})"]
    if KEY in assets.figures:
        parts.append(md_image("score against FLOPs saved", assets.figures[KEY]))
    if KEY in assets.textplots:
        parts.append(fenced(assets.textplots[KEY]))
    base = baseline(result)
    if base:
        latency, batch = base.get("latency_ms"), result.get("latency_batch_size")
        parts.append(baseline_line("untouched", base, latency, "prefill", batch))
    front = result.get("pareto") or []
    if front:
        parts.append(
            "Pareto front (score against FLOPs saved): " + ", ".join(map(md_escape, front)) + "."
        )
    parts += [note[0].upper() + note[1:] + "." for note in notes(result)]
    rows = prune_rows(result)
    if not rows:
        parts.append("No branches finished yet.")
        return "\n\n".join(parts)
    cells = [
        [
            md_escape(r["name"]),
            *change_cells(r),
            fmt_pct(r["kept_share"]),
            fmt_pct(r["flops_saved"]),
            fmt_pct(r["kv_saved"]),
            fmt(r["latency_ms"], LATENCY_DECIMALS),
            fmt(r["x_faster"], 2),
            "◆" if r["pareto"] else "",
        ]
        for r in rows
    ]
    headers = [h.replace("95%", interval_label(result_alpha(result))) for h in HEADERS]
    parts.append(
        "Every branch on the same samples; Δ against the untouched model with a paired "
        "interval; FLOPs and KV saved from the image tokens each stage kept (theoretical, "
        "decoder prefill); ◆ on the Pareto front:\n\n"
        + md_table(headers, cells, right=tuple(range(1, len(headers))))
    )
    return "\n\n".join(parts)

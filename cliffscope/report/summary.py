"""The Markdown summary of one run, composed from `tables` rows. Pure text, no I/O.

The generic sections (what was run, the score, every cliff estimate of the run's family, a few
examples) are written here; the run's kind adds its own (`RunKind.report_sections`). Figure
and data links arrive as paths relative to the summary file, so the folder renders on a
code-hosting site as it is. Anything that came from a dataset or a user is escaped.
"""

from __future__ import annotations

from typing import Any

from cliffscope.kinds.registry import kind_of
from cliffscope.report import tables
from cliffscope.report.assets import Assets
from cliffscope.report.markdown import md_cell, md_escape, md_link, md_table
from cliffscope.report.rundata import RunData
from cliffscope.vocab import (
    DEPTH_DECIMALS,
    MISSING,
    SCORE_DECIMALS,
    fmt,
    fmt_duration,
    fmt_int,
    fmt_with_interval,
    interval_label,
    result_alpha,
)

EXAMPLES = 8
_e = md_cell

__all__ = ["Assets", "render_summary"]


def _params(params: dict[str, Any]) -> str:
    if not params:
        return MISSING
    shown = []
    for key, value in params.items():
        if isinstance(value, list) and len(value) > 12:
            value = f"{len(value)} values"
        shown.append(f"{key}={value}")
    return md_escape(", ".join(shown), 200)


def facts_section(run: RunData) -> str:
    f = tables.run_facts(run)
    status = f["status"]
    if f["complete"] is False:
        status += " (partial result)"
    model = f["model"] or MISSING
    if f["revision"]:
        model = f"{model} @ {f['revision']}"
    samples = fmt_int(f["n_samples"]) if f["n_samples"] is not None else MISSING
    if f["subset_size"] is not None:
        samples += f" of {f['subset_size']}"
    if isinstance(f["n_failed"], int) and f["n_failed"]:
        samples += f" ({f['n_failed']} failed)"
    versions = ", ".join(
        f"{name} {f['versions'][name]}"
        for name in ("cliffscope", "torch", "transformers", "python")
        if name in f["versions"]
    )
    rows = [
        ("run", f["id"]),
        ("kind", f["kind"]),
        ("status", status),
        ("profile", f["profile"]),
        ("model", model),
        ("dtype", f["dtype"]),
        ("attention implementation", f["attn_implementation"]),
        ("task", f["task"]),
        ("split", f["split"]),
        ("metric", f["metric"]),
        ("samples", samples),
        ("subset hash", f["subset_hash"]),
        ("seed", f["seed"]),
        ("layers", f["num_layers"]),
        ("versions", versions),
        ("host", f["host"]),
        ("started", f["started"]),
        ("finished", f["finished"]),
        ("duration", fmt_duration(f["duration_s"])),
    ]
    cells = [[label, _e(value)] for label, value in rows]
    cells.append(["parameters", _params(f["params"])])
    if f["error"]:
        cells.append(["error", _e(f["error"])])
    return "## What was run\n\n" + md_table(["field", "value"], cells)


def cliff_section(run: RunData, rows: list[dict[str, Any]]) -> str:
    cells = [
        [
            r["estimate"],
            fmt_int(r["layer"]),
            fmt(r["depth"], DEPTH_DECIMALS),
            f"{r['lo']}–{r['hi']}" if r["lo"] is not None and r["hi"] is not None else MISSING,
            _e(r["verdict"]),
            md_escape(r["reason"], 240) if r["reason"] else MISSING,
            md_escape(r["run"]),
        ]
        for r in rows
    ]
    have = {r["estimate"] for r in rows}
    methods = [m for _, m in tables.family_methods(run)]
    for method in methods:
        if method.label not in have:
            cells.append([method.label, MISSING, MISSING, MISSING, "no run in this report", "", ""])
    text = "## Cliff\n\n" + md_table(
        ["estimate", "layer", "depth", "interval", "verdict", "reason", "run"], cells, right=(1, 2)
    )
    notes = ["Depth is layer / number of layers."] + [m.definition for m in methods if m.definition]
    return text + "\n\n" + " ".join(notes)


def score_line(result: dict[str, Any]) -> str:
    value = tables.score(result)
    if not value or value["value"] is None:
        return "Score: not available yet."
    kind = kind_of(result.get("kind"))
    what = kind.score_label if kind else ""
    metric = md_escape(result.get("metric") or "score")
    interval = fmt_with_interval(value["value"], value["lo"], value["hi"], SCORE_DECIMALS)
    n = result.get("n_samples", "?")
    level = interval_label(result_alpha(result))
    return f"Score: {what}{metric} {interval} ({level} interval) over {n} samples."


def examples_section(run: RunData) -> str:
    """A few samples with their answers: the dataset text the escaping exists for."""
    kind = kind_of(run.kind)
    lines = (
        kind.example_lines(run.samples) if kind else [s for s in run.samples if "prediction" in s]
    )
    if not lines:
        return ""
    lines.sort(key=lambda s: str(s.get("id")))
    shown = lines[:EXAMPLES]
    columns = [c for c in ("question", "prediction", "references") if any(c in s for s in shown)]
    cells = []
    for s in shown:
        row = [_e(s.get("id"))]
        for column in columns:
            value = s.get(column)
            if isinstance(value, list):
                value = " / ".join(map(str, value))
            row.append(_e(value))
        cells.append([*row, fmt(s.get("score"), SCORE_DECIMALS)])
    headers = ["id", *columns, "score"]
    title = kind.examples_title if kind else "answers"
    return f"## Examples ({title}, first {len(cells)} of {len(lines)})\n\n" + md_table(
        headers, cells, right=(len(headers) - 1,)
    )


def render_summary(run: RunData, partners: dict[str, RunData], assets: Assets) -> str:
    """The whole summary.md of one run."""
    facts = tables.run_facts(run)
    title = f"# cliffscope {md_escape(run.kind)} report: {md_escape(run.id)}"
    intro = (
        f"{md_escape(facts['profile'] or '?')} ({md_escape(facts['model'] or '?')}) on task "
        f"{md_escape(facts['task'] or '?')}, status **{md_escape(facts['status'])}**."
    )
    parts = [title, intro]
    if run.problem:
        parts.append(f"> Problem reading this run: {md_escape(run.problem, 300)}")
    parts.append(facts_section(run))
    if run.result is None:
        parts.append("No result yet: the run has not reached its first checkpoint.")
    else:
        estimates = tables.cliff_rows(run, partners)
        parts.append(score_line(run.res))
        parts.append(cliff_section(run, estimates))
        kind = kind_of(run.kind)
        if kind is not None:
            parts.extend(kind.report_sections(run, estimates, assets))
    parts.append(examples_section(run))
    if assets.data:
        parts.append(
            "Data: " + ", ".join(md_link(p.rsplit("/", 1)[-1], p) for p in assets.data) + "."
        )
    return "\n\n".join(p for p in parts if p) + "\n"

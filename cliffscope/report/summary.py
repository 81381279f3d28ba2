"""The Markdown summary of one run, composed from `tables` rows. Pure text, no I/O.

Figure and data links arrive as paths relative to the summary file, so the folder renders on a
code-hosting site as it is. Anything that came from a dataset or a user is escaped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cliffscope.report import tables
from cliffscope.report.markdown import fenced, md_escape, md_image, md_link, md_table
from cliffscope.report.rundata import RunData
from cliffscope.vocab import (
    DEPTH_DECIMALS,
    LATENCY_DECIMALS,
    MASS_DECIMALS,
    MISSING,
    SCORE_DECIMALS,
    finite,
    fmt,
    fmt_duration,
    fmt_int,
    fmt_interval,
    fmt_pct,
    fmt_sci,
    fmt_signed,
    fmt_with_interval,
)

EXAMPLES = 8
TEXT_LIMIT = 80


@dataclass
class Assets:
    """What the exporter made for one run, as links relative to its summary.md."""

    figures: dict[str, str] = field(default_factory=dict)  # "flow", "sweep", "maps:<id>"
    overlays: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # id: (band, png)
    textplots: dict[str, str] = field(default_factory=dict)  # "flow", "sweep"
    data: list[str] = field(default_factory=list)


def _e(value: Any) -> str:
    return MISSING if value is None or value == "" else md_escape(value, TEXT_LIMIT)


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


def cliff_section(run: RunData, partner: RunData | None) -> str:
    rows = tables.cliff_rows(run, partner)
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
    for estimate in ("attention flow", "truncation sweep"):
        if estimate not in have:
            cells.append([estimate, MISSING, MISSING, MISSING, "no run in this report", "", ""])
    text = "## Cliff\n\n" + md_table(
        ["estimate", "layer", "depth", "interval", "verdict", "reason", "run"], cells, right=(1, 2)
    )
    return (
        text
        + "\n\nDepth is layer / number of layers. The sweep cliff is the smallest k whose "
        + ("score stays within tolerance of the untruncated baseline.")
    )


def score_line(result: dict[str, Any]) -> str:
    value = tables.score(result)
    if not value or value["value"] is None:
        return "Score: not available yet."
    what = "baseline (untruncated) " if result.get("kind") == "sweep" else ""
    metric = md_escape(result.get("metric") or "score")
    interval = fmt_with_interval(value["value"], value["lo"], value["hi"], SCORE_DECIMALS)
    n = result.get("n_samples", "?")
    return f"Score: {what}{metric} {interval} (95% interval) over {n} samples."


def flow_section(run: RunData, partner: RunData | None, assets: Assets) -> str:
    result = run.res
    parts = [
        f"## Attention flow (query {md_escape(result.get('query', '?'))}, heads "
        f"{md_escape(result.get('heads', '?'))})"
    ]
    if "flow" in assets.figures:
        parts.append(md_image("attention flow per group", assets.figures["flow"]))
    if "flow" in assets.textplots:
        parts.append(fenced(assets.textplots["flow"]))
    names = tables.groups(result)
    n = tables.flow_layers(result)
    if not names or not n:
        parts.append("No flow measured yet.")
        return "\n\n".join(parts)
    flow_c = (tables.flow_cliff(run, partner) or {}).get("layer")
    sweep_c = (tables.sweep_cliff(run, partner) or {}).get("layer")
    series = {g: tables.flow_series(result, "mass", g) for g in names}
    cells = []
    for layer in range(n):
        notes = [m for m, c in (("flow cliff", flow_c), ("sweep cliff (k)", sweep_c)) if c == layer]
        cells.append(
            [str(layer), fmt(tables.depth(layer, n), DEPTH_DECIMALS)]
            + [
                fmt_with_interval(s["mean"][layer], s["lo"][layer], s["hi"][layer], MASS_DECIMALS)
                for s in series.values()
            ]
            + [", ".join(notes)]
        )
    headers = ["layer", "depth"] + [md_escape(g) for g in names] + ["cliff"]
    parts.append(
        "Attention mass (share of the query's attention) per layer and token group, mean "
        "[95% interval]:\n\n" + md_table(headers, cells, right=(0, 1))
    )
    spread = tables.even_spread(result)
    if spread:
        parts.append(
            "Even spread (each group's share of key positions, the level of attention that "
            "ignores content): "
            + ", ".join(f"{md_escape(g)} {fmt(v, MASS_DECIMALS)}" for g, v in spread.items())
            + "."
        )
    parts.append(_density_details(result, names, n))
    hist = result.get("sample_cliffs")
    if isinstance(hist, dict) and isinstance(hist.get("histogram"), dict):
        counts = ", ".join(
            f"layer {md_escape(k)}: {v}"
            for k, v in sorted(hist["histogram"].items(), key=lambda kv: str(kv[0]).zfill(6))
        )
        extra = [f"no collapse in {fmt_int(hist.get('no_collapse'))} samples"]
        if isinstance(hist.get("insufficient"), int) and hist["insufficient"]:
            extra.append(f"too little data in {hist['insufficient']}")
        if finite(hist.get("median")) is not None:
            extra.append(f"median layer {fmt(hist['median'], 1)}")
        parts.append(f"Per-sample cliffs: {counts or MISSING}; {'; '.join(extra)}.")
    return "\n\n".join(parts)


def _density_details(result: dict[str, Any], names: list[str], n: int) -> str:
    series = {g: tables.flow_series(result, "density", g)["mean"] for g in names}
    if not any(v is not None for s in series.values() for v in s):
        return ""
    cells = [[str(layer)] + [fmt_sci(s[layer]) for s in series.values()] for layer in range(n)]
    table = md_table(["layer"] + [md_escape(g) for g in names], cells, right=(0,))
    return (
        "<details><summary>Attention density (mass per token), mean per layer</summary>\n\n"
        f"{table}\n\n</details>"
    )


def sweep_section(run: RunData, partner: RunData | None, assets: Assets) -> str:
    result = run.res
    mode = md_escape(result.get("mode", "?"))
    if result.get("keep_ratio") is not None:
        mode += f", keep ratio {md_escape(result['keep_ratio'])}"
    if result.get("engine"):
        mode += f", engine {md_escape(result['engine'])}"
    parts = [f"## Truncation sweep (mode {mode})"]
    if "sweep" in assets.figures:
        parts.append(md_image("score against k", assets.figures["sweep"]))
    if "sweep" in assets.textplots:
        parts.append(fenced(assets.textplots["sweep"]))
    base = tables.baseline(result)
    if base:
        line = "Baseline (no truncation): " + fmt_with_interval(
            base["score"], base["lo"], base["hi"], SCORE_DECIMALS
        )
        if finite(result.get("latency_full_ms")) is not None:
            line += f"; full-model latency {fmt(result['latency_full_ms'], LATENCY_DECIMALS)} ms"
            if isinstance(result.get("latency_batch_size"), int):
                line += f" per batch of {result['latency_batch_size']}"
        parts.append(line + ".")
    rows = tables.sweep_rows(result)
    if not rows:
        parts.append("No truncation points finished yet.")
        return "\n\n".join(parts)
    cells = [
        [
            str(r["k"]),
            fmt(r["depth"], DEPTH_DECIMALS),
            fmt(r["score"], SCORE_DECIMALS),
            fmt_signed(r["delta"]),
            fmt_interval(r["lo"], r["hi"], SCORE_DECIMALS),
            fmt_int(r["flips_to_wrong"]),
            fmt_int(r["flips_to_right"]),
            fmt_int(r["changed"]),
            fmt_pct(r["flops_saved"]),
            fmt_pct(r["kv_saved"]),
            fmt(r["latency_ms"], LATENCY_DECIMALS),
        ]
        for r in rows
    ]
    headers = [
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
    parts.append(
        "Image tokens removed from layer k on (k = 0: no image; k = L: untouched model):\n\n"
        + md_table(headers, cells, right=tuple(range(len(headers))))
    )
    return "\n\n".join(parts)


def maps_section(run: RunData, assets: Assets) -> str:
    grids = {key[5:]: path for key, path in assets.figures.items() if key.startswith("maps:")}
    ids = list(dict.fromkeys([*grids, *assets.overlays]))
    if not ids:
        return ""
    by_id = {str(s.get("id")): s for s in run.samples}
    parts = [
        "## Attention and CAM maps",
        "Per sample, first all layers at a glance (top row: attention of the query to the image "
        "tokens; bottom row: LLaVA-CAM; one column per layer, each panel scaled to its own "
        "range), then the dashboard's overlay for each band of layers (the band's mean map over "
        "the image, each image grid over its own box, scaled from 0 to the peak shown).",
    ]
    for sample_id in ids:
        if sample_id in grids:
            parts.append(md_image(f"maps of sample {sample_id}", grids[sample_id]))
        overlays = assets.overlays.get(sample_id) or []
        if overlays:
            parts.append(
                " ".join(md_image(f"sample {sample_id}, {band}", path) for band, path in overlays)
            )
        sample = by_id.get(sample_id, {})
        refs = sample.get("references")
        refs_text = " / ".join(map(str, refs)) if isinstance(refs, list) else refs
        said = [("question", sample.get("question")), ("prediction", sample.get("prediction"))]
        said.append(("references", refs_text))
        text = "; ".join(f"{name}: {_e(value)}" for name, value in said if value is not None)
        parts.append(f"Sample {_e(sample_id)}" + (f": {text}." if text else "."))
    return "\n\n".join(parts)


def examples_section(run: RunData) -> str:
    """A few samples with their answers: the dataset text the escaping exists for."""
    lines = [s for s in run.samples if s.get("k", "base") == "base" and "prediction" in s]
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
    title = "baseline answers" if run.kind == "sweep" else "answers"
    return f"## Examples ({title}, first {len(cells)} of {len(lines)})\n\n" + md_table(
        headers, cells, right=(len(headers) - 1,)
    )


def render_summary(run: RunData, partner: RunData | None, assets: Assets) -> str:
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
        parts.append(score_line(run.res))
        parts.append(cliff_section(run, partner))
        if run.kind == "analysis":
            parts.append(flow_section(run, partner, assets))
            parts.append(maps_section(run, assets))
        elif run.kind == "sweep":
            parts.append(sweep_section(run, partner, assets))
    parts.append(examples_section(run))
    if assets.data:
        parts.append(
            "Data: " + ", ".join(md_link(p.rsplit("/", 1)[-1], p) for p in assets.data) + "."
        )
    return "\n\n".join(p for p in parts if p) + "\n"

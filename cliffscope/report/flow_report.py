"""The analysis kind's part of every output: flow tables, figures, maps, data files.

`kinds.analysis` names this module as its `report_module`: the exporter, the Markdown summary,
`runs show` and the compare views call these functions by name; each
takes plain result data (or a `RunData`) and the cliff estimates of the run's family, so the
other kinds' cliffs are marked without naming them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cliffscope.kinds.base import LayerTable
from cliffscope.report import tables
from cliffscope.report.assets import Assets, Figures, safe_file_part
from cliffscope.report.mapfile import load_map, read_map_data
from cliffscope.report.markdown import fenced, md_cell, md_escape, md_image, md_table
from cliffscope.report.rundata import RunData
from cliffscope.vocab import (
    DEPTH_DECIMALS,
    MASS_DECIMALS,
    MISSING,
    finite,
    fmt,
    fmt_int,
    fmt_sci,
    fmt_with_interval,
    interval_label,
    result_alpha,
)

MAX_MAP_SAMPLES = 2
IMAGE = "image"
FLOW_COLUMNS = ["measure", "group", "layer", "depth", "mean", "lo", "hi"]


def layer_table(result: dict[str, Any], measure: str = "mass") -> LayerTable | None:
    """Mean attention mass per layer and group (the flow curves as numbers)."""
    if not tables.has_flow(result):
        return None
    names = tables.groups(result)
    series = {g: tables.flow_series(result, measure, g)["mean"] for g in names}
    cliff = (result.get("cliff") or {}).get("layer")
    table = LayerTable("attention mass", ["layer", *names])
    for layer in range(tables.flow_layers(result)):
        marker = " ◀ cliff" if layer == cliff else ""
        table.rows.append([f"{layer}{marker}", *(fmt(series[g][layer], 3) for g in names)])
    return table


def depth_curve(run: RunData, group: str = IMAGE) -> tuple[list[float], list[float]] | None:
    """(depth, mean mass of `group`), missing layers skipped."""
    if not run.result:
        return None
    n = tables.flow_layers(run.res)
    means = tables.flow_series(run.res, "mass", group)["mean"]
    pts = [(layer / n, v) for layer, v in enumerate(means) if v is not None]
    return ([p[0] for p in pts], [p[1] for p in pts]) if pts else None


def depth_reference(run: RunData) -> float | None:
    """The even-spread level of the image group (the compare figure's dashed line)."""
    return tables.even_spread(run.res).get(IMAGE)


def sections(run: RunData, estimates: list[dict[str, Any]], assets: Assets) -> list[str]:
    return [flow_section(run, estimates, assets), maps_section(run, assets)]


def data(run: RunData) -> dict[str, Any]:
    res = run.res
    return {
        "flow": {m: tables.flow_rows(res, m) for m in ("mass", "density")},
        "even_spread": tables.even_spread(res),
        "sample_cliffs": res.get("sample_cliffs"),
    }


def csv_files(numbers: dict[str, Any]) -> dict[str, tuple[list[dict], list[str]]]:
    flow = numbers["flow"]["mass"] + numbers["flow"]["density"]
    return {"flow.csv": (flow, FLOW_COLUMNS)}


# ---- Markdown ------------------------------------------------------------------------------


def flow_section(run: RunData, estimates: list[dict[str, Any]], assets: Assets) -> str:
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
    marks = tables.estimate_marks(estimates)
    series = {g: tables.flow_series(result, "mass", g) for g in names}
    cells = []
    for layer in range(n):
        cells.append(
            [str(layer), fmt(tables.depth(layer, n), DEPTH_DECIMALS)]
            + [
                fmt_with_interval(s["mean"][layer], s["lo"][layer], s["hi"][layer], MASS_DECIMALS)
                for s in series.values()
            ]
            + [", ".join(mark for mark, at in marks if at == layer)]
        )
    headers = ["layer", "depth"] + [md_escape(g) for g in names] + ["cliff"]
    parts.append(
        "Attention mass (share of the query's attention) per layer and token group, mean "
        f"[{interval_label(result_alpha(result))} interval]:\n\n"
        + md_table(headers, cells, right=(0, 1))
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
        text = "; ".join(f"{name}: {md_cell(value)}" for name, value in said if value is not None)
        parts.append(f"Sample {md_cell(sample_id)}" + (f": {text}." if text else "."))
    return "\n\n".join(parts)


# ---- figures -------------------------------------------------------------------------------


def figures(run: RunData, estimates: list[dict[str, Any]], figs: Figures, assets: Assets) -> None:
    """flow.png, the flow text plot, and per map sample its maps grid and overlays."""
    from cliffscope.report import figures as draw
    from cliffscope.report import textplot

    res = run.res
    if not tables.has_flow(res):
        return
    others = tables.other_estimates(estimates, run)
    if link := figs.draw(draw.flow_figure, "flow.png", res, others=others):
        assets.figures["flow"] = link
    text = textplot.flow_textplot(res)
    if text:
        assets.textplots["flow"] = text
    maps = res.get("maps") if isinstance(res.get("maps"), list) else []
    for index, entry in enumerate(maps[:MAX_MAP_SAMPLES]):
        if isinstance(entry, dict):
            _map_figures(run, entry, index, figs, assets)


def _map_figures(
    run: RunData, entry: dict[str, Any], index: int, figs: Figures, assets: Assets
) -> None:
    from cliffscope.report import figures as draw
    from cliffscope.report.mapfile import inside

    sample_id = str(entry.get("id", index))
    try:
        doc = read_map_data(run.path, entry)
    except (OSError, ValueError) as exc:
        figs.warn(f"map of {sample_id}: {exc}")
        return
    cliff = (run.res.get("cliff") or {}).get("layer")
    chosen = draw.choose_layers(draw.map_layers(doc), figs.layers, cliff)
    if not chosen:
        figs.warn(f"map of {sample_id}: none of the layers {figs.layers} in it")
        return
    name = f"maps-{safe_file_part(sample_id)}.png"
    if f"figures/{name}" in assets.figures.values():
        name = f"maps-{index}-{safe_file_part(sample_id)}.png"
    image = inside(run.path, entry.get("image"))
    title = f"sample {sample_id}"
    if link := figs.draw(draw.maps_figure, name, doc, image, chosen, title=title):
        assets.figures[f"maps:{sample_id}"] = link
    stem = name[len("maps-") : -len(".png")]
    overlays = _overlays(run, entry, sample_id, f"overlay-{stem}", figs)
    if overlays:
        assets.overlays[sample_id] = overlays


def _overlays(
    run: RunData, entry: dict[str, Any], sample_id: str, prefix: str, figs: Figures
) -> list[tuple[str, str]]:
    """The dashboard's blend as PNG, one per band of layers (one per layer with --layers):
    (band label, link relative to the summary) for each one written."""
    from cliffscope.report import overlay

    try:
        loaded = load_map(Path(run.path), entry)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        figs.warn(f"overlays of {sample_id}: {exc}")
        return []
    available = sorted(set().union(*(loaded.layer_list(v) for v in ("attention", "cam"))))
    if figs.layers:
        bands = [[layer] for layer in figs.layers if layer in available]
    else:
        bands = overlay.layer_bands(available)
    made = []
    for band in bands:
        title = f"sample {sample_id}, {overlay.band_label(band)}"
        name = f"{prefix}-{band[0]}-{band[-1]}.png"
        if link := figs.draw(overlay.band_figure, name, loaded, band, title=title):
            made.append((overlay.band_label(band), link))
    return made

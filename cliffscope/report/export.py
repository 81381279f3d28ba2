"""`export_runs`: one or more runs -> a self-contained report folder (CLI and dashboard).

Layout (every link relative, so the folder renders on a code-hosting site as it is):

one run (default folder: the run directory itself, as DESIGN.md puts it)::

    summary.md  figures/{flow,sweep,maps-<id>,overlay-<id>-<band>}.png
    data/{summary.json,flow.csv,sweep.csv,cliffs.csv}

several runs (default folder: ./cliffscope-report-<UTC time>/)::

    compare.md  figures/compare-depth.png  data/{compare.json,compare.csv}
    <run-id>/summary.md ...  (each run as above, in its own folder)

`md` makes the Markdown with its figures, `json` and `csv` the data files; every file is
written atomically. A run's missing cliff estimate is taken from the run of the other kind of
the same model and task in the export, or else from the run's own store.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cliffscope.errors import ValidationError
from cliffscope.report import compare, tables
from cliffscope.report.mapfile import inside, load_map, read_map_data
from cliffscope.report.rundata import RunData, find_partner, store_partner
from cliffscope.report.summary import Assets, render_summary
from cliffscope.store import RunDir
from cliffscope.store.atomic import atomic_write_json, atomic_write_text

FORMATS = ("md", "json", "csv")
MAX_MAP_SAMPLES = 2
SUMMARY = "summary.md"
COMPARE = "compare.md"


@dataclass
class ExportResult:
    out_dir: Path
    files: list[Path] = field(default_factory=list)
    markdown: Path | None = None  # the main file: summary.md (one run) or compare.md
    warnings: list[str] = field(default_factory=list)


def default_out_dir(runs: Sequence[RunDir], now: datetime | None = None) -> Path:
    if len(runs) == 1:
        return runs[0].path
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%d-%H%M%S")
    return Path.cwd() / f"cliffscope-report-{stamp}"


def _safe_file_part(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")[:80] or "sample"


def _csv_text(rows: list[dict[str, Any]], columns: Sequence[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(
        buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n"
    )
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row.get(k) for k in columns})
    return buf.getvalue()


class _Writer:
    """Collects written files and keeps paths relative to where the Markdown lives."""

    def __init__(self, result: ExportResult) -> None:
        self.result = result

    def text(self, path: Path, text: str) -> Path:
        atomic_write_text(path, text)
        self.result.files.append(path)
        return path

    def json(self, path: Path, obj: Any) -> Path:
        atomic_write_json(path, obj)
        self.result.files.append(path)
        return path

    def figure(self, make: Any, path: Path, *args: Any, **kwargs: Any) -> Path | None:
        """Draw one figure; a broken input (corrupt map, odd values) costs that figure only."""
        try:
            make(*args, path=path, **kwargs)
        except (ValueError, TypeError, KeyError, OSError) as exc:
            self.result.warnings.append(f"{path.name}: {type(exc).__name__}: {exc}")
            return None
        self.result.files.append(path)
        return path


def run_json(run: RunData, partner: RunData | None) -> dict[str, Any]:
    """The numbers of one run's report, at full precision."""
    res = run.res
    out: dict[str, Any] = {
        "report_schema": 1,
        "run": tables.run_facts(run),
        "score": tables.score(res),
        "cliffs": tables.cliff_rows(run, partner),
    }
    if run.kind == "analysis":
        out["flow"] = {m: tables.flow_rows(res, m) for m in ("mass", "density")}
        out["even_spread"] = tables.even_spread(res)
        out["sample_cliffs"] = res.get("sample_cliffs")
    elif run.kind == "sweep":
        out["sweep"] = {"baseline": tables.baseline(res), "points": tables.sweep_rows(res)}
    return out


def _figures(run: RunData, partner: RunData | None, out: Path, w: _Writer, layers: Any) -> Assets:
    from cliffscope.report import figures, textplot

    assets = Assets()
    res = run.res
    if not run.result:
        return assets
    fig_dir = out / "figures"
    if run.kind == "analysis" and tables.has_flow(res):
        sweep_c = (tables.sweep_cliff(run, partner) or {}).get("layer")
        if w.figure(figures.flow_figure, fig_dir / "flow.png", res, sweep_cliff=sweep_c):
            assets.figures["flow"] = "figures/flow.png"
        text = textplot.flow_textplot(res)
        if text:
            assets.textplots["flow"] = text
        maps = res.get("maps") if isinstance(res.get("maps"), list) else []
        for index, entry in enumerate(maps[:MAX_MAP_SAMPLES]):
            _map_figure(run, entry, index, fig_dir, w, layers, assets)
    if run.kind == "sweep" and tables.sweep_rows(res):
        flow_c = (tables.flow_cliff(run, partner) or {}).get("layer")
        if w.figure(figures.sweep_figure, fig_dir / "sweep.png", res, flow_cliff=flow_c):
            assets.figures["sweep"] = "figures/sweep.png"
        text = textplot.sweep_textplot(res)
        if text:
            assets.textplots["sweep"] = text
    return assets


def _map_figure(
    run: RunData, entry: Any, index: int, fig_dir: Path, w: _Writer, layers: Any, assets: Assets
) -> None:
    from cliffscope.report import figures

    if not isinstance(entry, dict):
        return
    sample_id = str(entry.get("id", index))
    try:
        data = read_map_data(run.path, entry)
    except (OSError, ValueError) as exc:
        w.result.warnings.append(f"map of {sample_id}: {exc}")
        return
    cliff = (run.res.get("cliff") or {}).get("layer")
    chosen = figures.choose_layers(figures.map_layers(data), layers, cliff)
    if not chosen:
        w.result.warnings.append(f"map of {sample_id}: none of the layers {layers} in it")
        return
    name = f"maps-{_safe_file_part(sample_id)}.png"
    if f"figures/{name}" in assets.figures.values():
        name = f"maps-{index}-{_safe_file_part(sample_id)}.png"
    image = inside(run.path, entry.get("image"))
    title = f"sample {sample_id}"
    if w.figure(figures.maps_figure, fig_dir / name, data, image, chosen, title=title):
        assets.figures[f"maps:{sample_id}"] = f"figures/{name}"
    stem = name[len("maps-") : -len(".png")]
    overlays = _overlay_figures(run, entry, sample_id, fig_dir / f"overlay-{stem}", w, layers)
    if overlays:
        assets.overlays[sample_id] = overlays


def _overlay_figures(
    run: RunData, entry: dict[str, Any], sample_id: str, prefix: Path, w: _Writer, layers: Any
) -> list[tuple[str, str]]:
    """The dashboard's blend as PNG, one per band of layers (one per layer with --layers):
    (band label, link relative to the summary) for each one written."""
    from cliffscope.report import overlay

    try:
        loaded = load_map(run.path, entry)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        w.result.warnings.append(f"overlays of {sample_id}: {exc}")
        return []
    available = sorted(set().union(*(loaded.layer_list(v) for v in ("attention", "cam"))))
    if layers:
        bands = [[layer] for layer in layers if layer in available]
    else:
        bands = overlay.layer_bands(available)
    made = []
    for band in bands:
        path = prefix.with_name(f"{prefix.name}-{band[0]}-{band[-1]}.png")
        title = f"sample {sample_id}, {overlay.band_label(band)}"
        if w.figure(overlay.band_figure, path, loaded, band, title=title):
            made.append((overlay.band_label(band), f"figures/{path.name}"))
    return made


def _export_one(
    run: RunData, partner: RunData | None, out: Path, formats: set[str], w: _Writer, layers: Any
) -> Path | None:
    data_links = []
    if "json" in formats:
        w.json(out / "data" / "summary.json", run_json(run, partner))
        data_links.append("data/summary.json")
    if "csv" in formats:
        rows = run_json(run, partner)
        files = {"cliffs.csv": (rows["cliffs"], list(rows["cliffs"][0]) if rows["cliffs"] else [])}
        if run.kind == "analysis":
            flow = rows["flow"]["mass"] + rows["flow"]["density"]
            files["flow.csv"] = (flow, ["measure", "group", "layer", "depth", "mean", "lo", "hi"])
        if run.kind == "sweep":
            files["sweep.csv"] = (rows["sweep"]["points"], list(tables.SWEEP_FIELDS))
        for name, (items, columns) in files.items():
            if columns:
                w.text(out / "data" / name, _csv_text(items, columns))
                data_links.append(f"data/{name}")
    if "md" not in formats:
        return None
    assets = _figures(run, partner, out, w, layers)
    assets.data = data_links
    return w.text(out / SUMMARY, render_summary(run, partner, assets))


def export_runs(
    runs: Sequence[RunDir],
    out_dir: Path | None = None,
    formats: Sequence[str] = ("md",),
    layers_for_maps: Sequence[int] | None = None,
    search_store: bool = True,
) -> ExportResult:
    """Write the report of `runs` into `out_dir` (see the module docstring for the layout)."""
    if not runs:
        raise ValidationError("nothing to export", hint="give at least one run id")
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown or not formats:
        raise ValidationError(
            f"unknown report format(s) {unknown}", hint=f"use {', '.join(FORMATS)}"
        )
    out = Path(out_dir) if out_dir is not None else default_out_dir(runs)
    datas = [RunData.load(r) for r in runs]
    if len({d.id for d in datas}) != len(datas):
        raise ValidationError("a run is listed twice", hint="give each run once")
    partners: dict[str, RunData | None] = {}
    for data in datas:
        partner = find_partner(data, datas)
        recorded = isinstance(data.res.get("flow_cliff"), dict)  # a sweep names its own
        if partner is None and search_store and not recorded:
            partner = store_partner(data)
        partners[data.id] = partner
    result = ExportResult(out_dir=out)
    w = _Writer(result)
    fmts = set(formats)
    layers = list(layers_for_maps) if layers_for_maps else None
    if len(datas) == 1:
        result.markdown = _export_one(datas[0], partners[datas[0].id], out, fmts, w, layers)
        return result
    summaries = {}
    for data in datas:
        path = _export_one(data, partners[data.id], out / data.id, fmts, w, layers)
        if path is not None:
            summaries[data.id] = f"{data.id}/{SUMMARY}"
    _export_compare(datas, partners, out, fmts, w, summaries)
    return result


def _export_compare(
    datas: list[RunData],
    partners: dict[str, RunData | None],
    out: Path,
    fmts: set[str],
    w: _Writer,
    summaries: dict[str, str],
) -> None:
    rows = tables.compare_rows(datas, partners)
    data_links = []
    if "json" in fmts:
        w.json(out / "data" / "compare.json", {"report_schema": 1, "runs": rows})
        data_links.append("data/compare.json")
    if "csv" in fmts:
        w.text(out / "data" / "compare.csv", _csv_text(rows, list(rows[0])))
        data_links.append("data/compare.csv")
    if "md" not in fmts:
        return
    from cliffscope.report import textplot

    path = out / "figures" / "compare-depth.png"
    figure = "figures/compare-depth.png" if w.figure(compare.compare_figure, path, datas) else None
    plots = [
        textplot.depth_textplot(compare.curves(datas, "flow"), "image attention mass by depth"),
        textplot.depth_textplot(compare.curves(datas, "sweep"), "score - baseline by k / L"),
    ]
    text = compare.render_compare(
        datas, partners, summaries, figure, [p for p in plots if p], data_links
    )
    w.result.markdown = w.text(out / COMPARE, text)

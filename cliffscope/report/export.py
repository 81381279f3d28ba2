"""`export_runs`: one or more runs -> a self-contained report folder (CLI and dashboard).

Layout (every link relative, so the folder renders on a code-hosting site as it is):

one run (default folder: the run directory itself, as DESIGN.md puts it)::

    summary.md  figures/{flow,sweep,maps-<id>,overlay-<id>-<band>}.png
    data/{summary.json,flow.csv,sweep.csv,cliffs.csv}

several runs (default folder: ./cliffscope-report-<UTC time>/)::

    compare.md  figures/compare-depth.png  data/{compare.json,compare.csv}
    <run-id>/summary.md ...  (each run as above, in its own folder)

`md` makes the Markdown with its figures, `json` and `csv` the data files; every file is
written atomically. What is specific to a run kind (its figures, data files and sections)
comes from its declaration (`kinds`). A run's missing cliff estimates are taken from the runs
of its partner kinds on the same model and task in the export, or else from its own store.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cliffscope.errors import ValidationError
from cliffscope.kinds.registry import get_kind, kind_of, kinds, partners_of
from cliffscope.report import compare, tables
from cliffscope.report.assets import Assets, ExportResult, Figures, ReportWriter, csv_text
from cliffscope.report.rundata import RunData, find_partners, store_partners
from cliffscope.report.summary import render_summary
from cliffscope.store import RunDir

FORMATS = ("md", "json", "csv")
SUMMARY = "summary.md"
COMPARE = "compare.md"

__all__ = ["ExportResult", "default_out_dir", "export_runs"]


def default_out_dir(runs: Sequence[RunDir], now: datetime | None = None) -> Path:
    if len(runs) == 1:
        return runs[0].path
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%d-%H%M%S")
    return Path.cwd() / f"cliffscope-report-{stamp}"


def run_json(run: RunData, partners: dict[str, RunData]) -> dict[str, Any]:
    """The numbers of one run's report, at full precision."""
    out: dict[str, Any] = {
        "report_schema": 1,
        "run": tables.run_facts(run),
        "score": tables.score(run.res),
        "cliffs": tables.cliff_rows(run, partners),
    }
    kind = kind_of(run.kind)
    if kind is not None:
        out.update(kind.report_data(run))
    return out


def _export_one(
    run: RunData,
    partners: dict[str, RunData],
    out: Path,
    formats: set[str],
    w: ReportWriter,
    layers: Any,
) -> Path | None:
    kind = kind_of(run.kind)
    data_links = []
    if "json" in formats:
        w.json(out / "data" / "summary.json", run_json(run, partners))
        data_links.append("data/summary.json")
    if "csv" in formats:
        rows = run_json(run, partners)
        files = {"cliffs.csv": (rows["cliffs"], list(rows["cliffs"][0]) if rows["cliffs"] else [])}
        if kind is not None:
            files.update(kind.csv_files(rows))
        for name, (items, columns) in files.items():
            if columns:
                w.text(out / "data" / name, csv_text(items, columns))
                data_links.append(f"data/{name}")
    if "md" not in formats:
        return None
    assets = Assets()
    if run.result and kind is not None:
        figs = Figures(w, out / "figures", layers)
        kind.report_figures(run, tables.cliff_rows(run, partners), figs, assets)
    assets.data = data_links
    return w.text(out / SUMMARY, render_summary(run, partners, assets))


def _partners(data: RunData, datas: list[RunData], search_store: bool) -> dict[str, RunData]:
    """The partners in the export; the missing ones (that the run did not record) from the
    run's own store."""
    found = find_partners(data, datas)
    if kind_of(data.kind) is None or not search_store:
        return found
    missing = []
    for name in partners_of(data.kind):
        method = get_kind(name).cliff_method
        recorded = method is not None and isinstance(data.res.get(f"{method.key}_cliff"), dict)
        if name not in found and not recorded:
            missing.append(name)
    return {**store_partners(data, missing), **found}


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
    partners = {data.id: _partners(data, datas, search_store) for data in datas}
    result = ExportResult(out_dir=out)
    w = ReportWriter(result)
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
    partners: dict[str, dict[str, RunData]],
    out: Path,
    fmts: set[str],
    w: ReportWriter,
    summaries: dict[str, str],
) -> None:
    rows = tables.compare_rows(datas, partners)
    data_links = []
    if "json" in fmts:
        w.json(out / "data" / "compare.json", {"report_schema": 1, "runs": rows})
        data_links.append("data/compare.json")
    if "csv" in fmts:
        w.text(out / "data" / "compare.csv", csv_text(rows, list(rows[0])))
        data_links.append("data/compare.csv")
    if "md" not in fmts:
        return
    from cliffscope.report import textplot

    path = out / "figures" / "compare-depth.png"
    figure = "figures/compare-depth.png" if w.figure(compare.compare_figure, path, datas) else None
    plots = [
        textplot.depth_textplot(compare.curves(datas, kind), kind.curve.text_title)
        for kind in kinds()
        if kind.curve is not None
    ]
    text = compare.render_compare(
        datas, partners, summaries, figure, [p for p in plots if p], data_links
    )
    w.result.markdown = w.text(out / COMPARE, text)

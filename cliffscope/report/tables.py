"""Numbers of a run as rows of plain values: one source for Markdown, CSV, JSON and tests.

Every function tolerates a partial or absent result.json (a report of a queued or running run
must still render): missing numbers come back as None, missing lists as empty.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cliffscope.report.rundata import RunData
from cliffscope.vocab import finite

DEFAULT_GROUPS = ("system", "image", "instruction", "output")
SWEEP_FIELDS = (
    "k",
    "depth",
    "score",
    "delta",
    "lo",
    "hi",
    "flips_to_wrong",
    "flips_to_right",
    "changed",
    "flops_saved",
    "kv_saved",
    "latency_ms",
)

COUNTS = ("flips_to_wrong", "flips_to_right", "changed")


def _at(values: Any, index: int) -> float | None:
    if isinstance(values, list) and 0 <= index < len(values):
        return finite(values[index])
    return None


def depth(layer: Any, num_layers: int | None) -> float | None:
    """Normalised depth layer / L, so models of different depth share one axis."""
    if not isinstance(layer, int) or isinstance(layer, bool) or not num_layers:
        return None
    return layer / num_layers


def groups(result: dict[str, Any]) -> list[str]:
    listed = result.get("groups")
    if isinstance(listed, list) and listed:
        return [str(g) for g in listed]
    present = (result.get("flow") or {}).get("mass") or {}
    return [g for g in DEFAULT_GROUPS if g in present] + [
        g for g in present if g not in DEFAULT_GROUPS
    ]


def flow_layers(result: dict[str, Any]) -> int:
    """How many layer rows the flow has: num_layers, or the longest curve present."""
    n = result.get("num_layers")
    if isinstance(n, int) and n > 0:
        return n
    lengths = [
        len(stats.get("mean") or [])
        for by_group in (result.get("flow") or {}).values()
        if isinstance(by_group, dict)
        for stats in by_group.values()
        if isinstance(stats, dict)
    ]
    return max(lengths, default=0)


def flow_series(result: dict[str, Any], measure: str, group: str) -> dict[str, list[float | None]]:
    """{"mean": [L], "lo": [L], "hi": [L]} with None where a value is missing."""
    stats = ((result.get("flow") or {}).get(measure) or {}).get(group) or {}
    n = flow_layers(result)
    return {key: [_at(stats.get(key), i) for i in range(n)] for key in ("mean", "lo", "hi")}


def has_flow(result: dict[str, Any]) -> bool:
    """Whether any mass value exists yet (an early checkpoint may have none)."""
    return any(
        v is not None for g in groups(result) for v in flow_series(result, "mass", g)["mean"]
    )


def flow_rows(result: dict[str, Any], measure: str = "mass") -> list[dict[str, Any]]:
    """Long format, one row per (layer, group): the CSV and JSON shape."""
    n = flow_layers(result)
    rows = []
    for group in groups(result):
        series = flow_series(result, measure, group)
        for layer in range(n):
            rows.append(
                {
                    "measure": measure,
                    "group": group,
                    "layer": layer,
                    "depth": depth(layer, n),
                    "mean": series["mean"][layer],
                    "lo": series["lo"][layer],
                    "hi": series["hi"][layer],
                }
            )
    return rows


def even_spread(result: dict[str, Any]) -> dict[str, float | None]:
    spread = result.get("even_spread") or {}
    return {g: finite(spread.get(g)) for g in groups(result) if g in spread}


def sweep_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per truncation point, sorted by k, in `SWEEP_FIELDS` order."""
    n = result.get("num_layers") if isinstance(result.get("num_layers"), int) else None
    rows = []
    for point in result.get("points") or []:
        if not isinstance(point, dict) or not isinstance(point.get("k"), int):
            continue
        row: dict[str, Any] = {"k": point["k"], "depth": depth(point["k"], n)}
        for key in SWEEP_FIELDS[2:]:
            value = point.get(key)
            if key in COUNTS:
                row[key] = value if isinstance(value, int) and not isinstance(value, bool) else None
            else:
                row[key] = finite(value)
        rows.append(row)
    return sorted(rows, key=lambda r: r["k"])


def baseline(result: dict[str, Any]) -> dict[str, float | None] | None:
    base = result.get("baseline")
    if not isinstance(base, dict):
        return None
    value = base.get("score", base.get("value"))
    return {"score": finite(value), "lo": finite(base.get("lo")), "hi": finite(base.get("hi"))}


def score(result: dict[str, Any]) -> dict[str, float | None] | None:
    """The task score of an analysis run, or the untruncated baseline of a sweep."""
    if result.get("kind") == "sweep" or "baseline" in result:
        base = baseline(result)
        return (
            None if base is None else {"value": base["score"], "lo": base["lo"], "hi": base["hi"]}
        )
    value = result.get("score")
    if not isinstance(value, dict):
        return None
    return {k: finite(value.get(k)) for k in ("value", "lo", "hi")}


def _cliff_row(estimate: str, run: RunData, cliff: Any) -> dict[str, Any]:
    cliff = cliff if isinstance(cliff, dict) else {}
    layer = cliff.get("layer") if isinstance(cliff.get("layer"), int) else None
    return {
        "estimate": estimate,
        "run": run.id,
        "layer": layer,
        "depth": depth(layer, run.num_layers),
        "lo": cliff.get("lo") if isinstance(cliff.get("lo"), int) else None,
        "hi": cliff.get("hi") if isinstance(cliff.get("hi"), int) else None,
        "verdict": cliff.get("verdict") if cliff else None,
        "reason": cliff.get("reason") if cliff else None,
        "no_collapse_fraction": finite(cliff.get("no_collapse_fraction")),
    }


def flow_cliff(run: RunData, partner: RunData | None = None) -> dict[str, Any] | None:
    """The attention-flow cliff: the analysis run's own; for a sweep, its partner's in the
    report, else the one the sweep worker recorded (`flow_cliff`, naming its analysis run)."""
    if run.kind == "analysis":
        return _cliff_row("attention flow", run, run.res.get("cliff"))
    if partner is not None and partner.kind == "analysis":
        return _cliff_row("attention flow", partner, partner.res.get("cliff"))
    embedded = run.res.get("flow_cliff")
    if isinstance(embedded, dict):
        row = _cliff_row("attention flow", run, embedded)
        row["run"] = str(embedded.get("run") or run.id)  # same model, so the same depth
        return row
    return None


def sweep_cliff(run: RunData, partner: RunData | None = None) -> dict[str, Any] | None:
    if run.kind == "sweep":
        return _cliff_row("truncation sweep", run, run.res.get("cliff"))
    if partner is not None and partner.kind == "sweep":
        return _cliff_row("truncation sweep", partner, partner.res.get("cliff"))
    return None


def cliff_rows(run: RunData, partner: RunData | None = None) -> list[dict[str, Any]]:
    """Both estimates side by side (DESIGN.md): flow first, sweep second, absent ones left out."""
    return [r for r in (flow_cliff(run, partner), sweep_cliff(run, partner)) if r is not None]


# ---- what was run ----------------------------------------------------------------------------


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


def duration_s(spec: dict[str, Any]) -> float | None:
    """Wall time from started to finished; None while a run has not finished."""
    start, end = _as_datetime(spec.get("started")), _as_datetime(spec.get("finished"))
    if start is None or end is None:
        return None
    try:
        return (end - start).total_seconds()
    except TypeError:  # one naive, one aware
        return None


def iso(value: Any) -> str | None:
    when = _as_datetime(value)
    if when is None:
        return None if value is None else str(value)
    return when.isoformat().replace("+00:00", "Z")


def run_facts(run: RunData) -> dict[str, Any]:
    """Everything the "what was run" section shows, as plain values (JSON-ready)."""
    spec, result = run.spec, run.res
    subset = spec.get("subset") or {}
    ids = subset.get("ids")
    return {
        "id": run.id,
        "kind": run.kind,
        "status": run.status,
        "complete": result.get("complete") if run.result else None,
        "profile": run.profile.get("name"),
        "model": run.profile.get("model"),
        "revision": run.profile.get("revision"),
        "family": run.profile.get("family"),
        "dtype": run.profile.get("dtype"),
        "attn_implementation": run.profile.get("attn_implementation"),
        "task": run.task.get("name"),
        "split": run.task_spec.get("split"),
        "metric": result.get("metric") or run.task_spec.get("metric"),
        "n_samples": result.get("n_samples") if run.result else None,
        "n_failed": result.get("n_failed") if run.result else None,
        "subset_size": len(ids) if isinstance(ids, list) else None,
        "subset_hash": subset.get("hash"),
        "seed": subset.get("seed"),
        "limit": subset.get("limit"),
        "params": dict(spec.get("params") or {}),
        "versions": dict(spec.get("versions") or {}),
        "host": spec.get("host"),
        "created": iso(spec.get("created")),
        "started": iso(spec.get("started")),
        "finished": iso(spec.get("finished")),
        "duration_s": duration_s(spec),
        "updated": result.get("updated"),
        "num_layers": run.num_layers,
        "error": spec.get("error"),
    }


def compare_rows(runs: list[RunData], partners: dict[str, RunData | None]) -> list[dict[str, Any]]:
    """One row per run: what it is, its score and both cliffs (with normalised depth)."""
    rows = []
    for run in runs:
        facts = run_facts(run)
        value = score(run.res) or {}
        fc = flow_cliff(run, partners.get(run.id)) or {}
        sc = sweep_cliff(run, partners.get(run.id)) or {}
        rows.append(
            {
                "run": run.id,
                "kind": run.kind,
                "status": run.status,
                "profile": facts["profile"],
                "model": facts["model"],
                "task": facts["task"],
                "num_layers": facts["num_layers"],
                "n_samples": facts["n_samples"],
                "metric": facts["metric"],
                "score": value.get("value"),
                "score_lo": value.get("lo"),
                "score_hi": value.get("hi"),
                "flow_cliff": fc.get("layer"),
                "flow_cliff_depth": fc.get("depth"),
                "flow_verdict": fc.get("verdict"),
                "sweep_cliff": sc.get("layer"),
                "sweep_cliff_depth": sc.get("depth"),
                "sweep_verdict": sc.get("verdict"),
            }
        )
    return rows

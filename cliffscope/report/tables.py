"""Numbers of a run as rows of plain values: one source for Markdown, CSV, JSON and tests.

Every function tolerates a partial or absent result.json (a report of a queued or running run
must still render): missing numbers come back as None, missing lists as empty.
"""

from __future__ import annotations

from typing import Any

from cliffscope.kinds.base import CliffMethod, RunKind
from cliffscope.kinds.registry import cliff_methods, family, kind_of
from cliffscope.report.rundata import RunData
from cliffscope.vocab import GROUPS, as_datetime, finite, iso

DEFAULT_GROUPS = GROUPS
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
    """The run's headline score as its kind reads it (the task score of an analysis, the
    untruncated baseline of a sweep); a result of an unknown kind reads as a plain score."""
    return _kind_of(result.get("kind")).score(result)


def _kind_of(name: Any) -> RunKind:
    return kind_of(name) or RunKind()


def _cliff_row(method: CliffMethod, run: RunData, cliff: Any) -> dict[str, Any]:
    cliff = cliff if isinstance(cliff, dict) else {}
    layer = cliff.get("layer") if isinstance(cliff.get("layer"), int) else None
    return {
        "estimate": method.label,
        "run": run.id,
        "layer": layer,
        "depth": depth(layer, run.num_layers),
        "lo": cliff.get("lo") if isinstance(cliff.get("lo"), int) else None,
        "hi": cliff.get("hi") if isinstance(cliff.get("hi"), int) else None,
        "verdict": cliff.get("verdict") if cliff else None,
        "reason": cliff.get("reason") if cliff else None,
        "no_collapse_fraction": finite(cliff.get("no_collapse_fraction")),
    }


def family_methods(run: RunData) -> list[tuple[RunKind, CliffMethod]]:
    """(kind, method) of every kind whose cliff stands beside this run's (its own first in
    registry order with its partners); none for a run of an unknown kind."""
    if kind_of(run.kind) is None:
        return []
    return [(k, k.cliff_method) for k in family(run.kind) if k.cliff_method is not None]


def cliff_rows(run: RunData, partners: dict[str, RunData] | None = None) -> list[dict[str, Any]]:
    """Every cliff estimate of the run's family side by side (DESIGN.md): the run's own, a
    partner run's in the report, else the one the run's worker recorded of that kind
    (`<key>_cliff`, naming its run); absent ones left out."""
    partners = partners or {}
    rows = []
    for kind, method in family_methods(run):
        if kind.name == run.kind:
            rows.append(_cliff_row(method, run, kind.cliff(run.res)))
        elif (partner := partners.get(kind.name)) is not None:
            rows.append(_cliff_row(method, partner, kind.cliff(partner.res)))
        elif isinstance(recorded := run.res.get(f"{method.key}_cliff"), dict):
            row = _cliff_row(method, run, recorded)
            row["run"] = str(recorded.get("run") or run.id)  # same model, so the same depth
            rows.append(row)
    return rows


def method_for(label: Any) -> CliffMethod | None:
    """The cliff method of an estimate row (rows carry its label)."""
    return next((m for _, m in cliff_methods() if m.label == label), None)


def estimate_of(rows: list[dict[str, Any]], key: str) -> dict[str, Any] | None:
    """The estimate row of the method with `key` (`CliffMethod.key`), if present."""
    method = next((m for _, m in cliff_methods() if m.key == key), None)
    return next((r for r in rows if method and r["estimate"] == method.label), None)


def estimate_marks(rows: list[dict[str, Any]]) -> list[tuple[str, int | None]]:
    """(how a per-layer table marks it, layer) per estimate."""
    return [
        ((m.mark if (m := method_for(r["estimate"])) else r["estimate"]), r["layer"]) for r in rows
    ]


def other_estimates(rows: list[dict[str, Any]], run: RunData) -> list[tuple[int, str, str]]:
    """(layer, short name, colour) of the estimates beside the run's own (figures mark them)."""
    own = _kind_of(run.kind).cliff_method
    out = []
    for row in rows:
        method = method_for(row["estimate"])
        if method is not None and method != own and isinstance(row["layer"], int):
            out.append((row["layer"], method.short, method.colour))
    return out


# ---- what was run ----------------------------------------------------------------------------


def duration_s(spec: dict[str, Any]) -> float | None:
    """Wall time from started to finished; None while a run has not finished."""
    start, end = as_datetime(spec.get("started")), as_datetime(spec.get("finished"))
    if start is None or end is None:
        return None
    try:
        return (end - start).total_seconds()
    except TypeError:  # one naive, one aware
        return None


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


def compare_rows(
    runs: list[RunData], partners: dict[str, dict[str, RunData]]
) -> list[dict[str, Any]]:
    """One row per run: what it is, its score and every kind's cliff (with normalised depth)."""
    rows = []
    for run in runs:
        facts = run_facts(run)
        value = score(run.res) or {}
        row = {
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
        }
        estimates = cliff_rows(run, partners.get(run.id))
        for _, method in cliff_methods():
            found = next((r for r in estimates if r["estimate"] == method.label), {})
            row[f"{method.key}_cliff"] = found.get("layer")
            row[f"{method.key}_cliff_depth"] = found.get("depth")
            row[f"{method.key}_verdict"] = found.get("verdict")
        rows.append(row)
    return rows

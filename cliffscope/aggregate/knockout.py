"""Knockout sample lines -> the knockout `result.json` (schema in docs/knockout.md), numpy only.

One line per sample (key = id): the baseline answer, its probabilities (`p_first`,
`p_answer`) and, per edge and window start, the relative change of each probability when the
edge is blocked (`first[edge][s]`, `answer[edge][s]`; null for a sample without an answer).

- Only samples with every edge and start and finite changes count (`n_empty` says how many had
  no answer to teacher-force), so every point is the mean over the same samples.
- Every mean, its interval, the task score's interval and the cliff's interval come from ONE
  set of bootstrap resamples (`metrics.bootstrap.Resamples`).
- The knockout cliff (`knockout_cliff`): the first window start from which blocking each of
  the run's cliff edges (`kinds.knockout.CLIFF_EDGES`) lowers the mean probability (of the
  whole answer, or its first token: `cliff_on`) by at most `tolerance`, at that start and every
  later one. Its interval: the 2.5/97.5 percentiles of the cliffs the resamples find.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cliffscope.aggregate.header import failed_samples, result_header
from cliffscope.kinds.knockout import CLIFF_EDGES, NAME, KnockoutParams
from cliffscope.metrics.bootstrap import Resamples
from cliffscope.vocab import DEFAULT_ALPHA, interval_label

SCHEMA_VERSION = 1
MIN_SAMPLES = 10
MEASURES = ("first", "answer")
CLIFF, NEVER, INSUFFICIENT = "cliff", "never-harmless", "insufficient-data"


def _r(x: Any, digits: int = 6) -> float | None:
    return None if x is None or not np.isfinite(x) else float(f"{x:.{digits}g}")


def _usable(line: dict[str, Any], edges: list[str], n_starts: int) -> bool:
    if line.get("error"):
        return False
    for measure in MEASURES:
        by_edge = line.get(measure)
        if not isinstance(by_edge, dict):
            return False
        for edge in edges:
            values = by_edge.get(edge)
            if not isinstance(values, list) or len(values) != n_starts:
                return False
            if any(not isinstance(v, (int, float)) or not np.isfinite(v) for v in values):
                return False
    return True


def changes_array(lines: list[dict[str, Any]], edges: list[str]) -> np.ndarray:
    """[n, 2 (first, answer), E, W] relative changes of usable lines."""
    return np.array(
        [[[line[m][e] for e in edges] for m in MEASURES] for line in lines], dtype=float
    ).reshape(len(lines), len(MEASURES), len(edges), -1)


def first_harmless(worst: np.ndarray, tolerance: float) -> np.ndarray:
    """Per row of `worst` [..., W] (the smallest change over the cliff edges per start): the
    index of the first start from which every start costs at most `tolerance` (W: none)."""
    harmless = -worst <= tolerance
    tail = np.flip(np.logical_and.accumulate(np.flip(harmless, -1), axis=-1), -1)
    n = worst.shape[-1]
    return np.where(tail.any(-1), n - tail.sum(-1), n)


def knockout_cliff(
    worst: np.ndarray | None,
    boot_worst: np.ndarray | None,
    starts: list[int],
    n: int,
    tolerance: float,
    cliff_edges: list[str],
    measure: str,
    alpha: float,
) -> dict[str, Any]:
    """The cliff over the mean curve, with the resamples' interval (see the module docstring)."""
    out: dict[str, Any] = {
        "layer": None,
        "lo": None,
        "hi": None,
        "tolerance": tolerance,
        "edges": cliff_edges,
        "measure": measure,
    }
    if not cliff_edges:
        reason = "the run blocks none of " + ", ".join(CLIFF_EDGES)
        return {**out, "verdict": INSUFFICIENT, "reason": reason}
    if worst is None or boot_worst is None or n < MIN_SAMPLES or len(starts) < 2:
        reason = f"{n} complete samples and {len(starts)} window starts"
        return {**out, "verdict": INSUFFICIENT, "reason": reason + f" (need {MIN_SAMPLES}+, 2+)"}
    index = int(first_harmless(worst, tolerance))
    found = first_harmless(boot_worst, tolerance)
    found = found[found < len(starts)]
    out["no_cliff_fraction"] = _r(1.0 - found.size / max(1, boot_worst.shape[0]))
    if found.size:
        lo, hi = np.quantile(np.asarray(starts)[found], [alpha / 2, 1 - alpha / 2])
        out["lo"], out["hi"] = int(np.floor(lo)), int(np.ceil(hi))
    what = f"blocking {' and '.join(cliff_edges)}"
    if index == len(starts):
        reason = f"{what} still costs {-worst[-1]:.3g} of p({measure}) at l={starts[-1]}"
        return {**out, "lo": None, "hi": None, "verdict": NEVER, "reason": reason}
    layer = starts[index]
    if index == 0:
        reason = f"{what} costs at most {tolerance:g} from the first start l={layer} on"
    else:
        reason = (
            f"from l={layer} on {what} costs at most {tolerance:g} of p({measure}); "
            f"at l={starts[index - 1]} it costs {-worst[index - 1]:.3g}"
        )
    return {**out, "layer": layer, "verdict": CLIFF, "reason": reason}


def _band(mean: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> dict[str, list[float | None]]:
    return {
        "mean": [_r(v) for v in mean],
        "lo": [_r(v) for v in lo],
        "hi": [_r(v) for v in hi],
    }


def _statistics(
    used: list[dict[str, Any]],
    edges: list[str],
    cliff_edges: list[str],
    cliff_on: str,
    n_boot: int,
    alpha: float,
) -> dict[str, Any]:
    """Means and intervals of every change and of the task score, from one set of resamples;
    the cliff edges' worst mean change per start, for the mean and for every resample."""
    n = len(used)
    out: dict[str, Any] = {
        "changes": {m: {} for m in MEASURES},
        "score": {"value": None, "lo": None, "hi": None},
        "baseline": {"p_first": None, "p_answer": None},
        "worst": None,
        "boot_worst": None,
    }
    if not n:
        return out
    values = changes_array(used, edges)
    scores = np.array([float(line.get("score") or 0.0) for line in used])
    stacked = np.concatenate([values.reshape(n, -1), scores[:, None]], axis=1)
    boot = Resamples(n, n_boot).means(stacked) if n > 1 else stacked[:1].copy()
    mean = stacked.mean(0)
    lo, hi = np.quantile(boot, [alpha / 2, 1 - alpha / 2], axis=0)
    shape = values.shape[1:]
    for m, measure in enumerate(MEASURES):
        for e, edge in enumerate(edges):
            at = [np.reshape(a[:-1], shape)[m, e] for a in (mean, lo, hi)]
            out["changes"][measure][edge] = _band(*at)
    out["score"] = {"value": _r(mean[-1]), "lo": _r(lo[-1]), "hi": _r(hi[-1])}
    for key in out["baseline"]:
        out["baseline"][key] = _r(float(np.mean([float(line.get(key) or 0.0) for line in used])))
    if cliff_edges:
        m, picked = MEASURES.index(cliff_on), [edges.index(e) for e in cliff_edges]
        out["worst"] = mean[:-1].reshape(shape)[m, picked].min(0)
        out["boot_worst"] = boot[:, :-1].reshape(-1, *shape)[:, m, picked].min(1)
    return out


def aggregate(
    records: list[dict[str, Any]],
    *,
    edges: list[str],
    starts: list[int],
    window: int,
    num_layers: int,
    metric: str,
    higher_is_better: bool = True,
    tolerance: float = KnockoutParams.model_fields["tolerance"].default,
    cliff_on: str = KnockoutParams.model_fields["cliff_on"].default,
    score: dict[str, Any] | None = None,
    partner_cliffs: dict[str, Any] | None = None,
    complete: bool = False,
    n_boot: int = 1000,
    alpha: float = DEFAULT_ALPHA,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The knockout result for these sample lines (see the module docstring). `score`
    replaces the per-sample mean task score (corpus-level metrics)."""
    lines = {str(r.get("id")): r for r in records if not r.get("error")}
    ids = sorted(i for i, line in lines.items() if _usable(line, edges, len(starts)))
    used = [lines[i] for i in ids]  # sorted: the seeded bootstrap must not depend on line order
    n = len(used)
    cliff_edges = [e for e in CLIFF_EDGES if e in edges]
    stats = _statistics(used, edges, cliff_edges, cliff_on, n_boot, alpha)
    worst = stats["worst"]
    cliff = knockout_cliff(
        worst, stats["boot_worst"], starts, n, tolerance, cliff_edges, cliff_on, alpha
    )  # fmt: skip
    result = {
        **result_header(
            SCHEMA_VERSION,
            NAME,
            num_layers=num_layers,
            n_samples=n,
            n_failed=failed_samples(records),
            n_empty=sum(1 for i, line in lines.items() if i not in ids and line.get("empty")),
            metric=metric,
            higher_is_better=higher_is_better,
            complete=complete,
        ),
        "edges": list(edges),
        "window": window,
        "starts": list(starts),
        "tolerance": tolerance,
        "cliff_on": cliff_on,
        "alpha": alpha,
        "interval": f"bootstrap {interval_label(alpha)} over samples",
        "changes": stats["changes"],
        "cliff_curve": [_r(v) for v in worst] if worst is not None else [],
        "baseline": stats["baseline"],
        "score": score if score is not None else stats["score"],
        "cliff": cliff,
        **(partner_cliffs or {}),
    }
    result.update(extra or {})
    return result

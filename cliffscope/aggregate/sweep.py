"""Sweep sample lines -> the sweep `result.json` (schema in docs/architecture.md), numpy only.

Lines are keyed `{id}@{k}` (k = "base" for the untruncated model). Only samples that have the
baseline and every swept k count, so every point is compared on the same samples:

- per k: the score, and delta = score(k) - baseline with a paired bootstrap 95% interval (the
  same resampled samples for both arms, so shared per-sample noise cancels);
- flips: samples right at the baseline and wrong at k (`flips_to_wrong`) and the reverse
  (per-sample metrics; "right" = score >= `correct_at`), plus `changed` answers;
- the sweep's cliff: the smallest k from which every swept point is within tolerance of the
  baseline: its drop is at most `tolerance` (default 0.01, one point) or its paired interval
  still reaches the baseline.

Corpus-level metrics (CIDEr) have no score on the lines; `score_set(predictions, references)`
-> (per-sample scores, corpus score) scores each k's whole set. Their points use the corpus
score, and the interval of the per-sample scores' mean, moved to the corpus score.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from cliffscope.aggregate.header import failed_samples, result_header
from cliffscope.kinds.sweep import NAME, SweepParams
from cliffscope.metrics.bootstrap import bootstrap_ci, paired_bootstrap_delta
from cliffscope.vocab import DEFAULT_ALPHA, interval_label

SCHEMA_VERSION = 1
BASE = "base"
MIN_SAMPLES = 10

ScoreSet = Callable[[list[str], list[list[str]]], tuple[list[float], float]]


def _r(x: float | None, digits: int = 6) -> float | None:
    return None if x is None or not np.isfinite(x) else float(f"{x:.{digits}g}")


def complete_samples(
    records: list[dict[str, Any]], layers: list[int]
) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """Ids (in first-seen order) with a usable baseline and every k, and lines by key."""
    by_key = {str(r["key"]): r for r in records if "key" in r}
    ids: list[str] = []
    for r in records:
        sample_id = str(r.get("id"))
        if r.get("k") != BASE or r.get("error") or sample_id in ids:
            continue
        if all(f"{sample_id}@{k}" in by_key for k in layers):
            ids.append(sample_id)
    return ids, by_key


def _scores(
    ids: list[str],
    by_key: dict[str, dict[str, Any]],
    k: int | str,
    score_set: ScoreSet | None,
) -> tuple[np.ndarray, float]:
    """(per-sample scores, set score) of one branch over `ids`."""
    lines = [by_key[f"{i}@{k}"] for i in ids]
    if score_set is None:
        per = np.array([float(line.get("score") or 0.0) for line in lines])
        return per, float(per.mean()) if per.size else float("nan")
    refs = [list(by_key[f"{i}@{BASE}"].get("references") or []) for i in ids]
    per_list, corpus = score_set([str(line.get("prediction", "")) for line in lines], refs)
    return np.array(per_list, dtype=float), float(corpus)


def recovered(point: dict[str, Any], higher_is_better: bool, tolerance: float) -> bool:
    """Within tolerance of the baseline: a small drop, or an interval reaching the baseline."""
    delta, lo, hi = point["delta"], point["lo"], point["hi"]
    if delta is None:
        return False
    drop = -delta if higher_is_better else delta
    reaches = (hi is not None and hi >= 0) if higher_is_better else (lo is not None and lo <= 0)
    return drop <= tolerance or reaches


def sweep_cliff(
    points: list[dict[str, Any]], n: int, num_layers: int, tolerance: float
) -> dict[str, Any]:
    """The smallest swept k from which every point stays within tolerance of the baseline."""
    out: dict[str, Any] = {"layer": None, "tolerance": tolerance}
    if n < MIN_SAMPLES or len(points) < 2:
        reason = f"{n} complete samples and {len(points)} points"
        return {
            **out,
            "verdict": "insufficient-data",
            "reason": reason + f" (need {MIN_SAMPLES}+ and 2+)",
        }
    start = len(points)
    while start > 0 and points[start - 1]["recovered"]:
        start -= 1
    below_end = [p for p in points[start:] if p["k"] < num_layers]
    if not below_end:
        worst = points[-1] if points[-1]["k"] < num_layers else points[max(0, len(points) - 2)]
        return {
            **out,
            "verdict": "never-recovers",
            "reason": f"k={worst['k']} is still {abs(worst['delta'] or 0):.3g} from the baseline",
        }
    layer = below_end[0]["k"]
    if start == 0 and layer == 0:
        reason = (
            f"within {tolerance:g} of the baseline even at k=0: the task does not need the image"
        )
    elif start == 0:
        reason = f"within tolerance from the first swept layer k={layer}; sweep lower layers too"
    else:
        before = points[start - 1]
        reason = (
            f"from k={layer} on every point is within tolerance; "
            f"k={before['k']} is {abs(before['delta']):.3g} from the baseline"
        )
    return {**out, "layer": layer, "verdict": "cliff", "reason": reason}


def aggregate(
    records: list[dict[str, Any]],
    *,
    layers: list[int],
    num_layers: int,
    metric: str,
    higher_is_better: bool = True,
    score_set: ScoreSet | None = None,
    mode: str = SweepParams.model_fields["mode"].default,
    keep_ratio: float | None = None,
    tolerance: float = SweepParams.model_fields["tolerance"].default,
    correct_at: float = 0.5,
    costs: dict[int, dict[str, float | None]] | None = None,
    partner_cliffs: dict[str, Any] | None = None,
    complete: bool = False,
    n_boot: int = 1000,
    alpha: float = DEFAULT_ALPHA,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The sweep result for these sample lines (see the module docstring)."""
    layers = sorted(int(k) for k in layers)
    ids, by_key = complete_samples(records, layers)
    ids.sort()  # the seeded bootstrap must not depend on the order lines were appended in
    n = len(ids)
    base, base_set = _scores(ids, by_key, BASE, score_set)
    _, lo, hi = (
        bootstrap_ci(base, n_boot=n_boot, alpha=alpha) if n else (0.0, float("nan"), float("nan"))
    )
    shift = base_set - float(base.mean()) if n else 0.0
    points = []
    for k in layers:
        per, value = _scores(ids, by_key, k, score_set)
        delta, dlo, dhi = (
            paired_bootstrap_delta(base, per, n_boot=n_boot, alpha=alpha) if n else (None,) * 3
        )
        point: dict[str, Any] = {
            "k": k,
            "score": _r(value),
            "delta": _r(value - base_set) if n else None,
            "lo": _r(dlo + (value - base_set) - delta) if n else None,
            "hi": _r(dhi + (value - base_set) - delta) if n else None,
            "changed": sum(
                by_key[f"{i}@{k}"].get("prediction") != by_key[f"{i}@{BASE}"].get("prediction")
                for i in ids
            ),
            "flips_to_wrong": None,
            "flips_to_right": None,
        }
        if score_set is None:
            right_base, right_k = base >= correct_at, per >= correct_at
            point["flips_to_wrong"] = int((right_base & ~right_k).sum())
            point["flips_to_right"] = int((~right_base & right_k).sum())
        point.update({"flops_saved": None, "kv_saved": None, "latency_ms": None})
        point.update((costs or {}).get(k, {}))
        point["recovered"] = recovered(point, higher_is_better, tolerance)
        points.append(point)
    result = {
        **result_header(
            SCHEMA_VERSION,
            NAME,
            num_layers=num_layers,
            n_samples=n,
            n_failed=failed_samples(records),
            metric=metric,
            higher_is_better=higher_is_better,
            complete=complete,
        ),
        "mode": mode,
        "keep_ratio": keep_ratio,
        "layers": layers,
        "interval": f"paired bootstrap {interval_label(alpha)} over samples",
        "baseline": {
            "score": _r(base_set) if n else None,
            "lo": _r(lo + shift) if n else None,
            "hi": _r(hi + shift) if n else None,
        },
        "points": points,
        "cliff": sweep_cliff(points, n, num_layers, tolerance),
        **(partner_cliffs or {}),
    }
    result.update(extra or {})
    return result

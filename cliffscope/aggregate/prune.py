"""Prune sample lines -> the prune `result.json` (schema in docs/architecture.md), numpy only.

Lines are keyed `{id}@{branch}` (branch "base" for the untruncated model, else
`"<strategy>@<budget>"`). Only samples with the baseline and every branch count, so every
branch is compared on the same samples:

- per branch: the score, and delta = score - baseline with a paired bootstrap 95% interval
  (`metrics.bootstrap.Resamples`: the same resampled samples for both arms), flips (right at
  the baseline and wrong in the branch, and the reverse; "right" = score >= `correct_at`),
  changed answers, and the means of the per-sample FLOPs and KV saved and image tokens kept
  that the lines carry (counted from what each stage kept);
- the Pareto front of score against FLOPs: the baseline and the branches not beaten by another
  on both (at least as good a score with at least as much FLOPs saved, one of them strictly).

Corpus-level metrics (CIDEr) have no score on the lines; `score_set(predictions, references)`
-> (per-sample scores, corpus score) scores each branch's whole set, as in the sweep.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cliffscope.aggregate.header import failed_samples, result_header
from cliffscope.aggregate.sweep import ScoreSet
from cliffscope.kinds.prune import NAME
from cliffscope.metrics.bootstrap import Resamples, mean_interval
from cliffscope.vocab import DEFAULT_ALPHA, interval_label

SCHEMA_VERSION = 1
BASE = "base"


def _r(x: Any, digits: int = 6) -> float | None:
    if x is None or not np.isfinite(x):
        return None
    return float(f"{float(x):.{digits}g}")


def complete_samples(
    records: list[dict[str, Any]], branches: list[str]
) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """Sorted ids with a usable baseline and every branch, and the lines by key."""
    by_key = {str(r["key"]): r for r in records if "key" in r}
    ids = {
        str(r.get("id"))
        for r in records
        if r.get("branch") == BASE and not r.get("error")
        and all(f"{r.get('id')}@{b}" in by_key for b in branches)
    }  # fmt: skip
    return sorted(ids), by_key


def _scores(
    ids: list[str], by_key: dict[str, dict[str, Any]], branch: str, score_set: ScoreSet | None
) -> tuple[np.ndarray, float]:
    lines = [by_key[f"{i}@{branch}"] for i in ids]
    if score_set is None:
        per = np.array([float(line.get("score") or 0.0) for line in lines])
        return per, float(per.mean()) if per.size else float("nan")
    refs = [list(by_key[f"{i}@{BASE}"].get("references") or []) for i in ids]
    per_list, corpus = score_set([str(line.get("prediction", "")) for line in lines], refs)
    return np.array(per_list, dtype=float), float(corpus)


def _mean(lines: list[dict[str, Any]], field: str) -> float | None:
    values = [float(v) for v in (line.get(field) for line in lines) if v is not None]
    return float(np.mean(values)) if values else None


def _kept_share(lines: list[dict[str, Any]], n_image: list[int]) -> float | None:
    shares = [
        line["kept"][-1] / n
        for line, n in zip(lines, n_image, strict=True)
        if line.get("kept") and n
    ]
    return float(np.mean(shares)) if shares else None


def pareto_front(points: list[dict[str, Any]], higher_is_better: bool = True) -> list[str]:
    """Names of the points no other point beats on both score and FLOPs saved, by FLOPs saved."""
    sign = 1.0 if higher_is_better else -1.0
    usable = [p for p in points if p.get("score") is not None and p.get("flops_saved") is not None]

    def beats(q: dict[str, Any], p: dict[str, Any]) -> bool:
        qs, ps = sign * q["score"], sign * p["score"]
        ge = qs >= ps and q["flops_saved"] >= p["flops_saved"]
        return ge and (qs > ps or q["flops_saved"] > p["flops_saved"])

    front = [p for p in usable if not any(beats(q, p) for q in usable if q is not p)]
    return [str(p["name"]) for p in sorted(front, key=lambda p: (p["flops_saved"], p["name"]))]


def _branch_point(
    name: str,
    ids: list[str],
    by_key: dict[str, dict[str, Any]],
    base: tuple[np.ndarray, float],
    resamples: tuple[Resamples, np.ndarray] | None,
    score_set: ScoreSet | None,
    correct_at: float,
    alpha: float,
) -> dict[str, Any]:
    per, value = _scores(ids, by_key, name, score_set)
    base_per, base_set = base
    n = len(ids)
    delta = value - base_set if n else None
    lo = hi = delta
    if resamples is not None:
        rows, base_boot = resamples
        diff = rows.means(per) - base_boot + (delta - float(per.mean() - base_per.mean()))
        lo, hi = (float(q) for q in np.quantile(diff, [alpha / 2, 1 - alpha / 2]))
    lines = [by_key[f"{i}@{name}"] for i in ids]
    point: dict[str, Any] = {
        "name": name,
        "score": _r(value) if n else None,
        "delta": _r(delta),
        "lo": _r(lo),
        "hi": _r(hi),
        "changed": sum(
            line.get("prediction") != by_key[f"{i}@{BASE}"].get("prediction")
            for i, line in zip(ids, lines, strict=True)
        ),
        "flips_to_wrong": None,
        "flips_to_right": None,
        "flops_saved": _r(_mean(lines, "flops_saved")),
        "kv_saved": _r(_mean(lines, "kv_saved")),
        "kept_share": _r(
            _kept_share(lines, [int(by_key[f"{i}@{BASE}"].get("n_image") or 0) for i in ids])
        ),
    }
    if score_set is None:
        right_base, right = base_per >= correct_at, per >= correct_at
        point["flips_to_wrong"] = int((right_base & ~right).sum())
        point["flips_to_right"] = int((~right_base & right).sum())
    return point


def aggregate(
    records: list[dict[str, Any]],
    *,
    branches: list[dict[str, Any]],
    num_layers: int,
    metric: str,
    higher_is_better: bool = True,
    score_set: ScoreSet | None = None,
    latency_ms: dict[str, float] | None = None,
    correct_at: float = 0.5,
    complete: bool = False,
    n_boot: int = 1000,
    alpha: float = DEFAULT_ALPHA,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The prune result for these lines; `branches` are {"name", "strategy", "k", ...} in
    the order to report them."""
    names = [str(b["name"]) for b in branches]
    ids, by_key = complete_samples(records, names)
    n = len(ids)
    base_per, base_set = _scores(ids, by_key, BASE, score_set)
    resamples = None
    base_lo = base_hi = base_set if n else None
    if n >= 2:
        rows = Resamples(n, n_boot)
        base_boot = rows.means(base_per)
        resamples = (rows, base_boot)
        _, lo, hi = mean_interval(base_per, rows, alpha)
        shift = base_set - float(base_per.mean())
        base_lo, base_hi = float(lo) + shift, float(hi) + shift
    latency = latency_ms or {}
    points = []
    for info in branches:
        point = _branch_point(
            str(info["name"]), ids, by_key, (base_per, base_set), resamples, score_set,
            correct_at, alpha,
        )  # fmt: skip
        point.update({k: v for k, v in info.items() if k != "name"})
        point["latency_ms"] = latency.get(point["name"])
        points.append(point)
    baseline = {
        "name": BASE,
        "score": _r(base_set) if n else None,
        "lo": _r(base_lo),
        "hi": _r(base_hi),
        "flops_saved": 0.0,
        "kv_saved": 0.0,
        "latency_ms": latency.get(BASE),
    }
    front = pareto_front([baseline, *points], higher_is_better) if n else []
    for point in points:
        point["pareto"] = point["name"] in front
    baseline["pareto"] = BASE in front
    return {
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
        "interval": f"paired bootstrap {interval_label(alpha)} over samples",
        "baseline": baseline,
        "branches": points,
        "pareto": front,
        **(extra or {}),
    }

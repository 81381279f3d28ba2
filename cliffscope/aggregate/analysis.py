"""Analysis sample lines -> the analysis `result.json` (schema in docs/architecture.md).

Pure numpy and rebuilt from scratch at every checkpoint, so a resumed run, a re-aggregation
with other cliff parameters and a live worker all give the same file for the same lines.
Lines without flow curves (a sample that failed) are counted in `n_failed` and left out.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cliffscope.aggregate.cliff import CliffParams, cliff_with_interval, histogram, sample_cliffs
from cliffscope.aggregate.header import result_header
from cliffscope.kinds.analysis import NAME, AnalysisParams
from cliffscope.metrics.bootstrap import Resamples, mean_interval
from cliffscope.vocab import GROUPS, stored

MEASURES: tuple[str, ...] = ("mass", "density")
SCHEMA_VERSION = 1


def _usable(record: dict[str, Any], num_layers: int) -> bool:
    if record.get("error"):
        return False
    for measure in MEASURES:
        curves = record.get(measure)
        if not isinstance(curves, dict):
            return False
        for group in GROUPS:
            values = curves.get(group)
            if not isinstance(values, list) or len(values) != num_layers:
                return False
    return True


def _stack(records: list[dict[str, Any]], measure: str) -> np.ndarray:
    """[N, L, 4] in GROUPS order (JSON null -> NaN)."""
    return np.array([[r[measure][g] for g in GROUPS] for r in records], dtype=float).transpose(
        0, 2, 1
    )


def _evens(records: list[dict[str, Any]]) -> np.ndarray | None:
    try:
        return np.array([[r["even_spread"][g] for g in GROUPS] for r in records], dtype=float)
    except (KeyError, TypeError):
        return None


def _r(values: np.ndarray) -> list[float]:
    """As stored (`vocab.STORED_DIGITS`): plenty for plots, and result.json stays readable."""
    return [stored(v) for v in np.asarray(values, dtype=float).ravel()]


def _curve(mean: np.ndarray, lo: np.ndarray, hi: np.ndarray, j: int) -> dict[str, list]:
    return {"mean": _r(mean[:, j]), "lo": _r(lo[:, j]), "hi": _r(hi[:, j])}


def score_summary(scores: list[float], resamples: Resamples, alpha: float) -> dict[str, Any]:
    """`score` of result.json from per-sample scores (mean with a bootstrap interval)."""
    values = np.array(scores, dtype=float)
    if values.size != resamples.n:
        resamples = Resamples(values.size, resamples.n_boot, resamples.seed)
    mean, lo, hi = mean_interval(values[:, None], resamples, alpha)
    value, low, high = _r(np.array([mean[0], lo[0], hi[0]]))
    return {"value": value, "lo": low, "hi": high, "n": int(values.size)}


def aggregate(
    records: list[dict[str, Any]],
    num_layers: int,
    params: dict[str, Any],
    *,
    metric: str | None = None,
    higher_is_better: bool = True,
    complete: bool = False,
    score: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The analysis result for these sample lines.

    `params` are the run's [params] (query, heads, and an optional `cliff` table for
    `CliffParams`). `score` overrides the per-sample mean (corpus-level metrics like CIDEr,
    which the worker scores on the whole set).
    """
    typed = AnalysisParams.parse(params)  # the kind's defaults, declared once
    cliff_params = CliffParams.from_dict(typed.cliff)
    # sorted: the seeded bootstrap must not depend on the order lines were appended in
    usable = sorted((r for r in records if _usable(r, num_layers)), key=lambda r: str(r["id"]))
    n = len(usable)
    resamples = Resamples(max(n, 1), cliff_params.n_boot, cliff_params.seed)
    flow: dict[str, dict[str, Any]] = {}
    stacks = {m: _stack(usable, m) if n else np.zeros((0, num_layers, 4)) for m in MEASURES}
    for measure, stack in stacks.items():
        mean, lo, hi = mean_interval(stack, resamples, cliff_params.alpha)
        flow[measure] = {g: _curve(mean, lo, hi, j) for j, g in enumerate(GROUPS)}
    evens = _evens(usable) if n else None
    image = GROUPS.index("image")
    image_even = None if evens is None else evens[:, image]
    image_mass = stacks["mass"][:, :, image]
    scored = [float(r["score"]) for r in usable if isinstance(r.get("score"), (int, float))]
    if score is None and scored:
        score = score_summary(scored, resamples, cliff_params.alpha)
    return {
        **result_header(
            SCHEMA_VERSION,
            NAME,
            num_layers=num_layers,
            n_samples=n,
            n_failed=len(records) - n,
            metric=metric,
            higher_is_better=higher_is_better,
            complete=complete,
        ),
        "query": typed.query,
        "heads": typed.heads,
        "groups": list(GROUPS),
        "layers": list(range(num_layers)),
        "flow": flow,
        "even_spread": (
            {g: _r(evens[:, j].mean())[0] for j, g in enumerate(GROUPS)}
            if evens is not None
            else {}
        ),
        "cliff": cliff_with_interval(
            image_mass, image_even, cliff_params, resamples if n else None
        ),
        "sample_cliffs": histogram(sample_cliffs(image_mass, image_even, cliff_params)),
        "score": score,
        "maps": [
            {"id": r["id"], "file": r["map"]["file"], "image": r["map"].get("image")}
            for r in records
            if isinstance(r.get("map"), dict) and r["map"].get("file")
        ],
    }

"""Bootstrap 95% intervals for scores and for score differences.

Percentile bootstrap over samples. `bootstrap_ci` and `paired_bootstrap_delta` draw all
resamples as one index matrix and reduce along an axis (numpy, no Python loop over
resamples; the matrix is processed in chunks so 1000 x 100k samples does not need 800 MB).
The paired version reuses the same indices for both arms, which is what makes a truncation
sweep's "k vs baseline" interval narrow: per-sample noise shared by both arms cancels.
Corpus-level metrics (CIDEr) cannot be averaged per sample, so `bootstrap_corpus` calls a
function on each resampled index set instead (slower; use fewer resamples).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from cliffscope.errors import CliffscopeError
from cliffscope.metrics.base import Metric

Statistic = Callable[..., np.ndarray]
"""A reduction like np.mean: called as statistic(array) and statistic(matrix, axis=1)."""

_CHUNK_ELEMENTS = 4_000_000


def _resampled_stats(
    arrays: Sequence[np.ndarray], n_boot: int, seed: int, statistic: Statistic
) -> list[np.ndarray]:
    """statistic(array[idx], axis=1) for each array, with the same resampled idx for all."""
    n = len(arrays[0])
    rng = np.random.default_rng(seed)
    chunk = max(1, _CHUNK_ELEMENTS // n)
    outs: list[list[np.ndarray]] = [[] for _ in arrays]
    for start in range(0, n_boot, chunk):
        idx = rng.integers(0, n, size=(min(chunk, n_boot - start), n))
        for out, arr in zip(outs, arrays, strict=True):
            out.append(np.asarray(statistic(arr[idx], axis=1), dtype=float))
    return [np.concatenate(o) for o in outs]


def _interval(stats: np.ndarray, alpha: float) -> tuple[float, float]:
    lo, hi = np.quantile(stats, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(lo), float(hi)


def _check(n_boot: int, alpha: float) -> None:
    if n_boot < 1:
        raise CliffscopeError(f"bootstrap needs at least one resample, got n_boot={n_boot}")
    if not 0.0 < alpha < 1.0:
        raise CliffscopeError(f"bootstrap alpha must lie in (0, 1), got {alpha}")


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    statistic: Statistic = np.mean,
) -> tuple[float, float, float]:
    """(point, lo, hi): the statistic of `values` and its percentile (1 - alpha) interval.

    Empty input gives (nan, nan, nan) so a run with no finished samples can still be reported.
    """
    _check(n_boot, alpha)
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return (math.nan, math.nan, math.nan)
    (stats,) = _resampled_stats([x], n_boot, seed, statistic)
    return (float(statistic(x)), *_interval(stats, alpha))


def paired_bootstrap_delta(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    statistic: Statistic = np.mean,
) -> tuple[float, float, float]:
    """(delta, lo, hi) for delta = statistic(b) - statistic(a) over paired samples.

    `a[i]` and `b[i]` must be the same sample under two conditions (e.g. baseline and
    truncated at layer k); both are resampled with the same indices.
    """
    _check(n_boot, alpha)
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if xa.shape != xb.shape:
        raise CliffscopeError(
            f"paired bootstrap needs equal-length score lists, got {xa.size} and {xb.size}",
            hint="pair each sample's baseline score with its score under the same condition",
        )
    if xa.size == 0:
        return (math.nan, math.nan, math.nan)
    sa, sb = _resampled_stats([xa, xb], n_boot, seed, statistic)
    return (float(statistic(xb) - statistic(xa)), *_interval(sb - sa, alpha))


def bootstrap_corpus(
    fn: Callable[[np.ndarray], float],
    n: int,
    n_boot: int = 200,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float, float]:
    """(point, lo, hi) for a corpus-level score: fn(indices) scores the samples at `indices`.

    The point is fn(arange(n)). For a paired delta, let fn return the difference of the two
    corpus scores on the same indices.
    """
    _check(n_boot, alpha)
    if n == 0:
        return (math.nan, math.nan, math.nan)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    stats = np.array([float(fn(row)) for row in idx])
    return (float(fn(np.arange(n))), *_interval(stats, alpha))


def corpus_scorer(
    metric: Metric, predictions: Sequence[str], references: Sequence[Sequence[str]]
) -> Callable[[np.ndarray], float]:
    """fn(indices) -> metric's corpus score on those samples; feed it to `bootstrap_corpus`."""

    def fn(indices: np.ndarray) -> float:
        preds = [predictions[i] for i in indices]
        refs = [references[i] for i in indices]
        return metric.score_batch(preds, refs).corpus

    return fn

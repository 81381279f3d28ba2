"""The one bootstrap of cliffscope: percentile intervals over samples, from one resampling.

A resample of n samples is a row of n indices drawn with replacement (`Resamples`, seeded,
drawn in chunks so 1000 x 100k samples never sit in memory at once). Every interval of a
result uses the same rows: a sweep's baseline and its per-k deltas (paired: the same rows for
both arms, so per-sample noise shared by both cancels), an analysis's flow curves, score and
cliff. Means of wide arrays ([samples x layers x groups]) use the rows' count vectors, one
matrix product per chunk; any other statistic gathers the rows. Corpus-level metrics (CIDEr)
cannot be averaged per sample, so `bootstrap_corpus` scores each row's sample set instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from cliffscope.errors import CliffscopeError
from cliffscope.metrics.base import Metric

Statistic = Callable[..., np.ndarray]
"""A reduction like np.mean: called as statistic(array) and statistic(matrix, axis=1)."""

_CHUNK_ELEMENTS = 4_000_000


@dataclass(frozen=True)
class Resamples:
    """`n_boot` bootstrap resamples of `n` samples, reproducible from `seed`."""

    n: int
    n_boot: int = 1000
    seed: int = 0

    def indices(self) -> Iterator[np.ndarray]:
        """Index matrices [chunk, n], the same on every call (and for any chunk size)."""
        rng = np.random.default_rng(self.seed)
        size = max(1, _CHUNK_ELEMENTS // max(self.n, 1))
        for start in range(0, self.n_boot, size):
            yield rng.integers(0, self.n, size=(min(size, self.n_boot - start), self.n))

    def counts(self) -> Iterator[np.ndarray]:
        """The same resamples as count matrices [chunk, n] (how often each sample was drawn)."""
        for idx in self.indices():
            rows = idx.shape[0]
            flat = (idx + self.n * np.arange(rows)[:, None]).ravel()
            yield np.bincount(flat, minlength=rows * self.n).reshape(rows, self.n).astype(float)

    def means(self, values: np.ndarray) -> np.ndarray:
        """[n_boot, *values.shape[1:]]: the mean of `values` (axis 0 = samples) per resample."""
        flat = np.asarray(values, dtype=float).reshape(self.n, -1)
        out = np.concatenate([counts @ flat for counts in self.counts()]) / self.n
        return out.reshape(self.n_boot, *np.shape(values)[1:])

    def stats(self, arrays: Sequence[np.ndarray], statistic: Statistic) -> list[np.ndarray]:
        """statistic(array[rows], axis=1) per resample, for each array on the same rows."""
        outs: list[list[np.ndarray]] = [[] for _ in arrays]
        for idx in self.indices():
            for out, arr in zip(outs, arrays, strict=True):
                out.append(np.asarray(statistic(arr[idx], axis=1), dtype=float))
        return [np.concatenate(o) for o in outs]


def mean_interval(
    values: np.ndarray, resamples: Resamples, alpha: float = 0.05
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, lo, hi) over axis 0 with a (1 - alpha) percentile interval, elementwise.

    One sample gives lo = hi = mean (there is nothing to resample); none gives NaNs.
    """
    values = np.asarray(values, dtype=float)
    if values.shape[0] == 0:
        nan = np.full(values.shape[1:], np.nan)
        return nan, nan.copy(), nan.copy()
    mean = values.mean(axis=0)
    if values.shape[0] == 1:
        return mean, mean.copy(), mean.copy()
    boot = resamples.means(values)
    lo, hi = np.quantile(boot, [alpha / 2, 1 - alpha / 2], axis=0)
    return mean, lo, hi


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
    (stats,) = Resamples(x.size, n_boot, seed).stats([x], statistic)
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
    sa, sb = Resamples(xa.size, n_boot, seed).stats([xa, xb], statistic)
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
    rows = Resamples(n, n_boot, seed).indices()
    stats = np.array([float(fn(row)) for idx in rows for row in idx])
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

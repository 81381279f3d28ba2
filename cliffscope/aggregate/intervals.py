"""Percentile-bootstrap intervals over samples, shared by every statistic of one result.

A resample of n samples is represented by its count vector (how often each sample was drawn),
so the resampled mean of ANY per-sample array is one matrix product `counts @ values / n`.
All curves, the score and the cliff of an analysis use the same resamples, and a whole
[samples x layers x groups] stack costs one product instead of n_boot Python loops. Count
matrices are drawn in chunks so 1000 resamples of 100k samples never sit in memory at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

_CHUNK_ELEMENTS = 2_000_000


@dataclass(frozen=True)
class Resamples:
    """`n_boot` bootstrap resamples of `n` samples, reproducible from `seed`."""

    n: int
    n_boot: int = 1000
    seed: int = 0

    def chunks(self) -> Iterator[np.ndarray]:
        """Count matrices [chunk, n] (each row sums to n), the same on every call."""
        rng = np.random.default_rng(self.seed)
        size = max(1, _CHUNK_ELEMENTS // max(self.n, 1))
        for start in range(0, self.n_boot, size):
            rows = min(size, self.n_boot - start)
            yield rng.multinomial(self.n, np.full(self.n, 1.0 / self.n), size=rows).astype(float)

    def means(self, values: np.ndarray) -> np.ndarray:
        """[n_boot, *values.shape[1:]]: the mean of `values` (axis 0 = samples) per resample."""
        flat = values.reshape(self.n, -1).astype(float)
        out = np.concatenate([counts @ flat for counts in self.chunks()]) / self.n
        return out.reshape(self.n_boot, *values.shape[1:])


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

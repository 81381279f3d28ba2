"""Bootstrap intervals: coverage of the point, determinism, width, pairing."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cliffscope.errors import CliffscopeError
from cliffscope.metrics import bootstrap
from cliffscope.metrics.bootstrap import (
    bootstrap_ci,
    bootstrap_corpus,
    corpus_scorer,
    paired_bootstrap_delta,
)
from cliffscope.metrics.caption import CIDErD


def _coin(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2, size=n).astype(float)


def test_interval_contains_the_mean() -> None:
    x = _coin(200)
    point, lo, hi = bootstrap_ci(x)
    assert point == pytest.approx(x.mean())
    assert lo < point < hi


def test_interval_is_deterministic_for_a_seed() -> None:
    x = np.random.default_rng(0).random(200)  # continuous, so quantiles differ across seeds
    assert bootstrap_ci(x, seed=3) == bootstrap_ci(x, seed=3)
    assert bootstrap_ci(x, seed=3)[1:] != bootstrap_ci(x, seed=4)[1:]


def test_interval_width_matches_the_binomial_standard_error() -> None:
    # 400 fair coin flips: SE = sqrt(0.25 / 400) = 0.025, 95% width ~ 2 * 1.96 * 0.025 = 0.098
    x = np.array([0.0, 1.0] * 200)
    _, lo, hi = bootstrap_ci(x, n_boot=4000)
    assert 0.085 < hi - lo < 0.11


def test_interval_narrows_with_more_samples() -> None:
    _, lo_small, hi_small = bootstrap_ci(_coin(100))
    _, lo_big, hi_big = bootstrap_ci(_coin(1000))
    ratio = (hi_small - lo_small) / (hi_big - lo_big)
    assert 2.0 < ratio < 5.0  # ~sqrt(10) = 3.16


def test_constant_values_have_a_zero_width_interval() -> None:
    assert bootstrap_ci([0.7] * 50) == pytest.approx((0.7, 0.7, 0.7))
    assert bootstrap_ci([1.0]) == (1.0, 1.0, 1.0)


def test_empty_input_gives_nan() -> None:
    assert all(math.isnan(v) for v in bootstrap_ci([]))
    assert all(math.isnan(v) for v in paired_bootstrap_delta([], []))


def test_chunking_does_not_change_the_result(monkeypatch: pytest.MonkeyPatch) -> None:
    x = _coin(300)
    whole = bootstrap_ci(x, n_boot=500)
    monkeypatch.setattr(bootstrap, "_CHUNK_ELEMENTS", 300 * 7)  # chunks of 7 resamples
    assert bootstrap_ci(x, n_boot=500) == whole


def test_statistic_is_pluggable() -> None:
    x = np.arange(101, dtype=float)
    point, lo, hi = bootstrap_ci(x, statistic=np.median)
    assert point == 50.0
    assert lo < 50.0 < hi


def test_paired_delta_cancels_shared_noise() -> None:
    a = _coin(300)
    b = a + 0.1  # every sample gains exactly 0.1
    delta, lo, hi = paired_bootstrap_delta(a, b)
    assert delta == pytest.approx(0.1)
    # same indices for both arms -> every resampled delta is 0.1; unpaired it would be ~0.11 wide
    assert (lo, hi) == pytest.approx((0.1, 0.1))


def test_paired_delta_sign_and_coverage() -> None:
    rng = np.random.default_rng(5)
    a = rng.integers(0, 2, size=500).astype(float)
    b = np.where(rng.random(500) < 0.2, 0.0, a)  # truncation breaks ~20% of the right answers
    delta, lo, hi = paired_bootstrap_delta(a, b)
    assert delta == pytest.approx(b.mean() - a.mean())
    assert lo < delta < hi < 0.0


def test_paired_delta_needs_equal_lengths() -> None:
    with pytest.raises(CliffscopeError, match="equal-length"):
        paired_bootstrap_delta([1.0, 0.0], [1.0])


def test_bad_parameters_are_reported() -> None:
    with pytest.raises(CliffscopeError, match="n_boot"):
        bootstrap_ci([1.0], n_boot=0)
    with pytest.raises(CliffscopeError, match="alpha"):
        bootstrap_ci([1.0], alpha=1.5)


def test_corpus_bootstrap_agrees_with_the_vectorised_one() -> None:
    x = _coin(120)
    want = bootstrap_ci(x, n_boot=300, seed=2)
    got = bootstrap_corpus(lambda idx: float(x[idx].mean()), len(x), n_boot=300, seed=2)
    assert got == pytest.approx(want)


def test_corpus_bootstrap_of_cider() -> None:
    preds = ["red cat", "green dog", "a big tree", "blue sky today"]
    refs = [["red cat"], ["blue dog"], ["a tall tree"], ["blue sky today"]]
    fn = corpus_scorer(CIDErD(), preds, refs)
    point, lo, hi = bootstrap_corpus(fn, len(preds), n_boot=30)
    assert point == pytest.approx(CIDErD().score_batch(preds, refs).corpus)
    assert lo <= hi
    assert lo >= 0.0 and hi <= 10.0

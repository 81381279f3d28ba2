"""Cliff detection and bootstrap intervals on synthetic flow curves (numpy only, fast)."""

from __future__ import annotations

import numpy as np
import pytest

from cliffscope.aggregate.cliff import (
    CLIFF,
    INSUFFICIENT,
    NO_COLLAPSE,
    CliffParams,
    cliff_with_interval,
    detect,
    histogram,
    sample_cliffs,
    smooth,
)
from cliffscope.metrics.bootstrap import Resamples, mean_interval

P = CliffParams(n_boot=300)


def step(n: int, at: int, high: float = 0.6, low: float = 0.05) -> np.ndarray:
    return np.where(np.arange(n) < at, high, low).astype(float)


def test_clear_step_is_found_at_its_layer() -> None:
    v = detect(step(32, 15), even=0.9, params=P)
    assert (v.verdict, v.layer) == (CLIFF, 15)
    assert "from layer 15" in v.reason and "even-spread" in v.reason


def test_flat_curve_is_no_collapse_with_the_minimum_in_the_reason() -> None:
    curve = np.full(32, 0.4)
    curve[20] = 0.34
    v = detect(curve, even=0.5, params=P)
    assert v.verdict == NO_COLLAPSE and v.layer is None
    assert "never drops below 0.5x" in v.reason and "0.85 at layer 20" in v.reason


def test_noisy_flat_curve_is_no_collapse() -> None:
    rng = np.random.default_rng(1)
    for _ in range(20):
        curve = 0.4 + rng.normal(0, 0.05, 32)
        assert detect(curve, even=0.45, params=P).verdict == NO_COLLAPSE


def test_noisy_step_is_found_near_its_layer_with_smoothing() -> None:
    rng = np.random.default_rng(2)
    params = CliffParams(smooth=3, n_boot=100)
    for _ in range(20):
        curve = np.clip(step(32, 12) + rng.normal(0, 0.04, 32), 0, None)
        v = detect(curve, even=0.9, params=params)
        assert v.verdict == CLIFF and abs(v.layer - 12) <= 1


def test_drop_to_the_even_spread_level_is_not_a_collapse() -> None:
    """Small trained models: strong early image attention that settles at uniform attention."""
    curve = np.array([0.8, 0.3, 0.31, 0.29, 0.3, 0.3])
    v = detect(curve, even=0.3, params=CliffParams(early=1))
    assert v.verdict == NO_COLLAPSE
    assert "even-spread level" in v.reason and "uniform" in v.reason
    # Without the even-spread condition, the same curve has a cliff at layer 1.
    v = detect(curve, even=0.3, params=CliffParams(early=1, rho=None))
    assert (v.verdict, v.layer) == (CLIFF, 1)


def test_dip_that_recovers_is_not_a_cliff() -> None:
    curve = np.array([0.6, 0.6, 0.6, 0.05, 0.05, 0.05, 0.6, 0.6])
    v = detect(curve, even=0.9, params=CliffParams(early=2))
    assert v.verdict == NO_COLLAPSE and "recovers" in v.reason and "layer 7" in v.reason


def test_collapse_in_the_last_layer_only_needs_min_run() -> None:
    curve = step(8, 7)
    v = detect(curve, even=0.9, params=CliffParams(min_run=2))
    assert v.verdict == NO_COLLAPSE and "last 1 layer" in v.reason
    assert detect(curve, even=0.9, params=CliffParams(min_run=1)).layer == 7


def test_cliff_is_never_inside_the_early_window() -> None:
    curve = step(16, 1)  # already low at layer 1, early window is layers 0-3
    v = detect(curve, even=0.9, params=CliffParams(early=4))
    assert (v.verdict, v.layer) == (CLIFF, 4)


@pytest.mark.parametrize(
    ("curve", "params", "needle"),
    [
        (np.array([0.5, 0.1]), P, "at least 3 layers"),
        (np.zeros(8), P, "no attention to the image"),
        (np.array([0.5, np.nan, 0.1, 0.1]), P, "missing values"),
    ],
)
def test_insufficient_data(curve: np.ndarray, params: CliffParams, needle: str) -> None:
    v = detect(curve, even=0.5, params=params)
    assert v.verdict == INSUFFICIENT and v.layer is None and needle in v.reason


def test_smooth_keeps_length_and_constants() -> None:
    x = np.array([1.0, 1.0, 4.0, 1.0, 1.0])
    assert smooth(x, 3).tolist() == pytest.approx([1, 2, 2, 2, 1])
    assert smooth(np.full(7, 0.3), 5).tolist() == pytest.approx([0.3] * 7)


def test_bootstrap_interval_brackets_the_population_cliff() -> None:
    rng = np.random.default_rng(3)
    layers = rng.integers(9, 12, size=200)  # per-sample cliffs 9..11
    curves = np.stack([step(24, k) + rng.normal(0, 0.01, 24) for k in layers])
    out = cliff_with_interval(curves, np.full(200, 0.9), P)
    assert out["verdict"] == CLIFF
    assert 9 <= out["lo"] <= out["layer"] <= out["hi"] <= 12
    assert out["no_collapse_fraction"] == 0.0
    assert out["params"]["tau"] == 0.5


def test_bootstrap_of_a_mixed_population_reports_no_collapse_fraction() -> None:
    """Half the samples collapse at 10, half never do: the mean curve sits near 0.5x early."""
    rng = np.random.default_rng(4)
    flat = np.full((40, 24), 0.6) + rng.normal(0, 0.02, (40, 24))
    cliffy = np.stack([step(24, 10, low=0.0) for _ in range(40)])
    out = cliff_with_interval(np.concatenate([flat, cliffy]), np.full(80, 0.9), P)
    assert 0.0 < out["no_collapse_fraction"] < 1.0
    assert "bootstrap resamples" in out["reason"]


def test_too_few_samples_is_insufficient() -> None:
    out = cliff_with_interval(np.stack([step(8, 4)] * 2), None, CliffParams(min_samples=3))
    assert out["verdict"] == INSUFFICIENT and "3 samples, have 2" in out["reason"]
    assert out["layer"] is None and out["lo"] is None


def test_per_sample_cliffs_and_histogram() -> None:
    curves = np.stack([step(10, 3), step(10, 3), step(10, 6), np.full(10, 0.5)])
    verdicts = sample_cliffs(curves, np.full(4, 0.9), CliffParams())
    assert [v.layer for v in verdicts] == [3, 3, 6, None]
    hist = histogram(verdicts)
    assert hist["histogram"] == {"3": 2, "6": 1}
    assert hist["no_collapse"] == 1 and hist["median"] == 3.0


def test_params_from_run_toml_ignore_unknown_keys_and_map_negative_rho_to_none() -> None:
    params = CliffParams.from_dict({"tau": 0.3, "rho": -1, "colour": "red"})
    assert params.tau == 0.3 and params.rho is None
    assert CliffParams.from_dict(None) == CliffParams()
    assert CliffParams(early=None).early_layers(32) == 4
    assert CliffParams(early=10).early_layers(4) == 3


def test_resamples_are_reproducible_and_mean_interval_contains_the_mean() -> None:
    rng = np.random.default_rng(5)
    values = rng.normal(1.0, 1.0, size=(400, 3))
    res = Resamples(400, 500, seed=7)
    chunks = list(res.counts())
    assert sum(c.shape[0] for c in chunks) == 500
    assert np.allclose(chunks[0].sum(axis=1), 400)
    assert np.array_equal(res.means(values), Resamples(400, 500, seed=7).means(values))
    mean, lo, hi = mean_interval(values, res)
    assert np.all(lo < mean) and np.all(mean < hi)
    # a 95% interval of a mean of 400 unit-variance values is about +-0.1
    assert np.all(hi - lo > 0.12) and np.all(hi - lo < 0.28)


def test_mean_interval_edge_cases() -> None:
    one = np.array([[0.3, 0.4]])
    mean, lo, hi = mean_interval(one, Resamples(1, 10))
    assert mean.tolist() == lo.tolist() == hi.tolist() == [0.3, 0.4]
    mean, _, _ = mean_interval(np.zeros((0, 2)), Resamples(1, 10))
    assert np.all(np.isnan(mean))

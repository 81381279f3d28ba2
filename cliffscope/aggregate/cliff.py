"""Where does attention to the image collapse? Cliff detection on an image-flow curve.

Input: the image-group attention mass per layer, m[0..L-1] (one sample's, or the mean over
samples), and the even-spread level e (the image's share of the keys the query sees: what
uniform attention would put on the image). Algorithm (parameters in `CliffParams`):

1. Smooth m with a centred moving average of `smooth` layers (1 = none; edges repeat).
2. Early level E = mean of the first `early` layers (default max(1, L // 8)).
3. Layer l >= `early` is *collapsed* when m[l] < `tau` * E and, unless `rho` is None,
   also m[l] < `rho` * e: attention to the image must fall well below its early level AND
   well below the uniform-attention level. The second condition keeps a model that simply
   attends evenly everywhere (as small trained models do) from being called collapsed.
4. The cliff is the first layer l >= `early` such that every layer from l to the end is
   collapsed, provided that stretch is at least `min_run` layers long.

Verdicts: "cliff" (with the layer), "no-collapse" (with the reason: never below tau x early;
below that but not under rho x even spread; or it recovers), "insufficient-data" (fewer than
`min_layers` layers or `min_samples` samples, no image mass early, or NaNs).

`cliff_with_interval` applies this to the mean curve over samples and bootstraps it: resample
samples, recompute the mean curve and its cliff, and report the 2.5/97.5 percentiles of the
cliff layers found plus the fraction of resamples without a collapse. `sample_cliffs` runs the
detector on each sample's own curve, because the cliff moves with the context.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from cliffscope.metrics.bootstrap import Resamples

CLIFF, NO_COLLAPSE, INSUFFICIENT = "cliff", "no-collapse", "insufficient-data"


@dataclass(frozen=True)
class CliffParams:
    tau: float = 0.5
    rho: float | None = 0.5
    early: int | None = None
    smooth: int = 1
    min_run: int = 2
    min_layers: int = 3
    min_samples: int = 3
    n_boot: int = 1000
    alpha: float = 0.05
    seed: int = 0

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> CliffParams:
        """Known keys only (run.toml may hold more); TOML has no null, so rho < 0 means None."""
        known = {k: v for k, v in (raw or {}).items() if k in cls.__dataclass_fields__}
        if isinstance(known.get("rho"), (int, float)) and known["rho"] < 0:
            known["rho"] = None
        return cls(**known)

    def early_layers(self, num_layers: int) -> int:
        early = self.early if self.early is not None else max(1, num_layers // 8)
        return min(max(1, early), max(1, num_layers - 1))


@dataclass(frozen=True)
class Verdict:
    verdict: str
    layer: int | None
    reason: str


def smooth(curve: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average; edges are padded with their own values."""
    if window <= 1:
        return curve.astype(float)
    half = window // 2
    padded = np.concatenate([np.full(half, curve[0]), curve, np.full(window - 1 - half, curve[-1])])
    return np.convolve(padded, np.full(window, 1.0 / window), mode="valid")


def detect(curve: np.ndarray, even: float | None, params: CliffParams) -> Verdict:
    """Verdict for one image-mass curve (see the module docstring)."""
    m = np.asarray(curve, dtype=float)
    n = m.size
    if n < params.min_layers:
        return Verdict(INSUFFICIENT, None, f"need at least {params.min_layers} layers, got {n}")
    if not np.all(np.isfinite(m)):
        return Verdict(INSUFFICIENT, None, "the image-flow curve has missing values")
    s = smooth(m, params.smooth)
    early = params.early_layers(n)
    level = float(s[:early].mean())
    span = "layer 0" if early == 1 else f"layers 0-{early - 1}"
    if level <= 0:
        return Verdict(INSUFFICIENT, None, f"no attention to the image in {span}")
    ratio = s / level
    use_even = params.rho is not None and even is not None and even > 0
    below = ratio < params.tau
    if use_even:
        below &= s < params.rho * even
    below[:early] = False
    tail_ok = np.flip(np.logical_and.accumulate(np.flip(below)))  # collapsed from l to the end
    starts = np.flatnonzero(tail_ok)
    if starts.size and n - starts[0] >= params.min_run:
        layer = int(starts[0])
        reason = (
            f"image mass stays below {params.tau:g}x its early level ({level:.3g}, {span}) "
            f"from layer {layer} on (at most {ratio[layer:].max():.2f}x)"
        )
        if use_even:
            reason += f"; {s[layer] / even:.2f}x the even-spread level {even:.3g} there"
        return Verdict(CLIFF, layer, reason)
    after = ratio[early:]
    low = int(np.argmin(after)) + early
    if after.min() >= params.tau:
        reason = (
            f"image mass never drops below {params.tau:g}x its early level ({level:.3g}, "
            f"{span}); min ratio {after.min():.2f} at layer {low}"
        )
    elif not below.any():  # below tau x early, but never under rho x even spread
        reason = (
            f"image mass falls to {ratio[low]:.2f}x its early level (layer {low}) but stays "
            f"at {s[early:].min() / even:.2f}x the even-spread level {even:.3g} or more (a "
            f"collapse needs < {params.rho:g}x): attention to the image stays about uniform"
        )
    elif starts.size:
        reason = (
            f"image mass collapses only in the last {n - int(starts[0])} layer(s) (from layer "
            f"{int(starts[0])}); a cliff needs {params.min_run}"
        )
    else:
        first = int(np.flatnonzero(below)[0])
        last_up = int(np.flatnonzero(~below[early:])[-1]) + early
        reason = (
            f"image mass collapses at layer {first} but recovers: layer {last_up} is back at "
            f"{ratio[last_up]:.2f}x its early level"
        )
        if use_even:
            reason += f" and {s[last_up] / even:.2f}x the even-spread level"
    return Verdict(NO_COLLAPSE, None, reason)


def sample_cliffs(
    curves: np.ndarray, evens: np.ndarray | None, params: CliffParams
) -> list[Verdict]:
    """The detector on each sample's own curve ([N, L]) with its own even spread ([N])."""
    return [
        detect(c, None if evens is None else float(evens[i]), params)
        for i, c in enumerate(np.asarray(curves, dtype=float))
    ]


def histogram(verdicts: list[Verdict]) -> dict[str, Any]:
    """`sample_cliffs` of result.json: cliff-layer counts plus the samples without one."""
    layers = [v.layer for v in verdicts if v.layer is not None]
    counts = Counter(layers)
    return {
        "histogram": {str(k): counts[k] for k in sorted(counts)},
        "no_collapse": sum(v.verdict == NO_COLLAPSE for v in verdicts),
        "insufficient": sum(v.verdict == INSUFFICIENT for v in verdicts),
        "median": float(np.median(layers)) if layers else None,
        "mean": float(np.mean(layers)) if layers else None,
    }


def cliff_with_interval(
    curves: np.ndarray,
    evens: np.ndarray | None,
    params: CliffParams,
    resamples: Resamples | None = None,
) -> dict[str, Any]:
    """The `cliff` object of result.json: verdict on the mean curve plus a bootstrap interval."""
    curves = np.asarray(curves, dtype=float)
    n = curves.shape[0] if curves.ndim == 2 else 0
    out: dict[str, Any] = {"params": asdict(params), "layer": None, "lo": None, "hi": None}
    if n < params.min_samples:
        out.update(
            verdict=INSUFFICIENT,
            reason=f"need at least {params.min_samples} samples, have {n}",
            no_collapse_fraction=None,
        )
        return out
    mean_even = None if evens is None else float(np.mean(evens))
    point = detect(curves.mean(axis=0), mean_even, params)
    out.update(verdict=point.verdict, layer=point.layer, reason=point.reason)
    resamples = resamples or Resamples(n, params.n_boot, params.seed)
    boot_curves = resamples.means(curves)
    boot_evens = None if evens is None else resamples.means(np.asarray(evens, dtype=float))
    found = []
    for b in range(boot_curves.shape[0]):
        even_b = None if boot_evens is None else float(boot_evens[b])
        layer = detect(boot_curves[b], even_b, params).layer
        if layer is not None:
            found.append(layer)
    fraction = 1.0 - len(found) / boot_curves.shape[0]
    out["no_collapse_fraction"] = round(fraction, 4)
    if found:
        a = params.alpha
        out["lo"] = int(np.quantile(found, a / 2, method="lower"))
        out["hi"] = int(np.quantile(found, 1 - a / 2, method="higher"))
    if point.verdict == CLIFF and fraction > 0:
        out["reason"] += f"; {fraction:.0%} of bootstrap resamples show no collapse"
    elif point.verdict == NO_COLLAPSE and found:
        out["reason"] += f"; {1 - fraction:.0%} of bootstrap resamples find a cliff"
    return out

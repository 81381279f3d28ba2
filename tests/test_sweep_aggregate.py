"""Sweep lines -> result.json, the sweep cliff, and the theoretical cost model (no torch)."""

from __future__ import annotations

import numpy as np
import pytest

from cliffscope.aggregate.sweep import aggregate, recovered, sweep_cliff
from cliffscope.flops import DecoderDims, layer_flops, mean_savings, savings

LAYERS = [0, 1, 2, 3, 4]


def _lines(correct: dict[int | str, list[int]], refs: bool = False) -> list[dict]:
    """One line per (sample, k); `correct[k][i]` is 1 when sample i is answered right at k."""
    out = []
    for k, row in correct.items():
        for i, ok in enumerate(row):
            line = {
                "key": f"s{i}@{k}",
                "id": f"s{i}",
                "k": k,
                "prediction": "red" if ok else "blue",
            }
            if refs:
                line["references"] = ["red"]
            else:
                line["score"] = float(ok)
            out.append(line)
    return out


def _sharp_cliff(n: int = 40) -> dict[int | str, list[int]]:
    rng = np.random.default_rng(0)
    chance = (rng.random(n) < 0.5).astype(int).tolist()
    return {"base": [1] * n, 0: chance, 1: chance, 2: [1] * n, 3: [1] * n, 4: [1] * n}


def test_cliff_is_the_first_layer_from_which_every_point_recovers() -> None:
    result = aggregate(_lines(_sharp_cliff()), layers=LAYERS, num_layers=4, metric="exact_match")
    assert result["n_samples"] == 40 and result["baseline"]["score"] == 1.0
    assert result["cliff"]["verdict"] == "cliff" and result["cliff"]["layer"] == 2
    p0 = result["points"][0]
    assert p0["delta"] == pytest.approx(p0["score"] - 1.0)
    assert p0["lo"] <= p0["delta"] <= p0["hi"] < 0
    assert p0["flips_to_wrong"] == 40 - sum(_sharp_cliff()[0]) and p0["flips_to_right"] == 0
    assert p0["changed"] == p0["flips_to_wrong"]
    assert [p["recovered"] for p in result["points"]] == [False, False, True, True, True]


def test_a_late_relapse_moves_the_cliff_and_never_recovering_is_reported() -> None:
    correct = _sharp_cliff()
    correct[3] = correct[0]  # worse again at k=3: only k >= 4 stays within tolerance
    result = aggregate(_lines(correct), layers=LAYERS, num_layers=4, metric="exact_match")
    assert result["cliff"]["verdict"] == "never-recovers" and result["cliff"]["layer"] is None
    correct[3] = [1] * 40
    correct[2] = [1] * 39 + [0]  # one sample lost: within the interval, still recovered
    result = aggregate(_lines(correct), layers=LAYERS, num_layers=4, metric="exact_match")
    assert result["cliff"]["layer"] == 2


def test_unfinished_samples_are_left_out_and_few_samples_are_insufficient() -> None:
    lines = _lines({k: v[:6] for k, v in _sharp_cliff().items()})
    lines = [ln for ln in lines if ln["key"] != "s5@3"]  # a sample torn mid-way
    result = aggregate(lines, layers=LAYERS, num_layers=4, metric="exact_match")
    assert result["n_samples"] == 5
    assert result["cliff"]["verdict"] == "insufficient-data" and result["cliff"]["reason"]


def test_corpus_level_metrics_are_scored_per_layer_by_score_set() -> None:
    calls = []

    def score_set(preds: list[str], refs: list[list[str]]) -> tuple[list[float], float]:
        calls.append(len(preds))
        per = [2.0 if p == r[0] else 0.0 for p, r in zip(preds, refs, strict=True)]
        return per, float(np.mean(per)) + 0.5  # a corpus score that is not the mean

    lines = _lines(_sharp_cliff(), refs=True)
    result = aggregate(
        lines, layers=LAYERS, num_layers=4, metric="cider", score_set=score_set, tolerance=0.02
    )
    assert calls == [40] * 6
    assert result["baseline"]["score"] == 2.5
    p0 = result["points"][0]
    assert p0["flips_to_wrong"] is None and p0["lo"] <= p0["delta"] <= p0["hi"]
    assert result["points"][-1]["delta"] == 0 and result["cliff"]["layer"] == 2


def test_costs_and_flow_cliff_are_carried_and_lower_is_better_flips_the_rule() -> None:
    costs = {0: {"flops_saved": 0.8, "kv_saved": 0.9, "latency_ms": 5.0}}
    flow = {"run": "x", "layer": 2, "verdict": "cliff"}
    result = aggregate(
        _lines(_sharp_cliff()), layers=LAYERS, num_layers=4, metric="m", costs=costs,
        partner_cliffs={"flow_cliff": flow}, complete=True,
    )  # fmt: skip
    assert result["points"][0]["latency_ms"] == 5.0 and result["points"][1]["flops_saved"] is None
    assert result["flow_cliff"] == flow and result["complete"] is True
    worse = {"delta": 0.05, "lo": 0.02, "hi": 0.08}
    assert recovered(worse, higher_is_better=True, tolerance=0.01)
    assert not recovered(worse, higher_is_better=False, tolerance=0.01)


def test_cliff_at_zero_says_the_image_is_not_needed() -> None:
    points = [{"k": k, "delta": 0.0, "lo": 0.0, "hi": 0.0, "recovered": True} for k in LAYERS]
    cliff = sweep_cliff(points, 50, 4, 0.01)
    assert cliff["layer"] == 0 and "not need" in cliff["reason"]


DIMS = DecoderDims(
    num_layers=32, hidden=4096, intermediate=11008, heads=32, kv_heads=32, head_dim=128
)


def test_savings_match_hand_counts_for_llava_7b() -> None:
    assert savings(DIMS, 576, 40, 32) == (0.0, 0.0)
    flops0, kv0 = savings(DIMS, 576, 40, 0)
    assert kv0 == pytest.approx(576 / 616)
    assert flops0 == pytest.approx(1 - layer_flops(DIMS, 40) / layer_flops(DIMS, 616))
    per_token = 2 * 4096 * 3 * 4096 + 2 * 4096 * 4096 + 6 * 4096 * 11008
    assert layer_flops(DIMS, 2) == per_token * 2 + 3 * 4 * 4096
    values = [savings(DIMS, 576, 40, k) for k in range(33)]
    assert all(a[0] > b[0] and a[1] > b[1] for a, b in zip(values, values[1:-1], strict=False))
    assert savings(DIMS, 576, 40, 16)[1] == pytest.approx(kv0 / 2)


def test_keep_ratio_saves_less_and_means_average_prompts() -> None:
    full = mean_savings(DIMS, [(576, 40)], 2)
    half = mean_savings(DIMS, [(576, 40)], 2, keep_ratio=0.5)
    assert half[0] < full[0] and half[1] == pytest.approx(full[1] / 2)
    mixed = mean_savings(DIMS, [(576, 40), (100, 40)], 2)
    assert mixed[1] == pytest.approx(
        (savings(DIMS, 576, 40, 2)[1] + savings(DIMS, 100, 40, 2)[1]) / 2
    )
    assert mean_savings(DIMS, [], 2) == (0.0, 0.0)

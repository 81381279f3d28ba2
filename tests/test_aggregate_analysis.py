"""Analysis sample lines -> result.json: schema, curves with intervals, cliff, score, maps."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cliffscope.aggregate.analysis import GROUPS, aggregate
from cliffscope.aggregate.cliff import CliffParams, detect
from cliffscope.store.atomic import json_safe

L = 8


def record(i: int, cliff_at: int | None, score: float | None = 1.0) -> dict:
    rng = np.random.default_rng(i)
    image = np.full(L, 0.6) if cliff_at is None else np.where(np.arange(L) < cliff_at, 0.6, 0.05)
    image = image + rng.normal(0, 0.005, L)
    system = np.full(L, 0.2)
    instruction = 1.0 - image - system
    mass = {"system": system, "image": image, "instruction": instruction, "output": np.zeros(L)}
    counts = {"system": 5, "image": 20, "instruction": 10, "output": 0}
    return {
        "key": f"s{i}",
        "id": f"s{i}",
        "prediction": "red",
        "references": ["red"],
        "score": score,
        "n_tokens": counts,
        "mass": {g: v.tolist() for g, v in mass.items()},
        "density": {g: (v / max(counts[g], 1)).tolist() for g, v in mass.items()},
        "even_spread": {g: counts[g] / 35 for g in GROUPS},
    }


def test_result_schema_and_curves() -> None:
    records = [record(i, 5, score=float(i % 2)) for i in range(30)]
    out = aggregate(records, L, {"query": "answer", "heads": "max"}, metric="exact_match")
    json.dumps(json_safe(out), allow_nan=False)  # what RunDir.write_result does
    for key in ("schema_version", "kind", "num_layers", "n_samples", "metric",
                "higher_is_better", "complete", "updated"):  # fmt: skip
        assert key in out
    assert out["kind"] == "analysis" and out["num_layers"] == L
    assert (out["n_samples"], out["n_failed"]) == (30, 0)
    assert (out["query"], out["heads"], out["groups"]) == ("answer", "max", list(GROUPS))
    for measure in ("mass", "density"):
        for group in GROUPS:
            curve = out["flow"][measure][group]
            assert len(curve["mean"]) == len(curve["lo"]) == len(curve["hi"]) == L
            assert all(
                lo <= m <= hi
                for lo, m, hi in zip(curve["lo"], curve["mean"], curve["hi"], strict=True)
            )
    image = np.array([r["mass"]["image"] for r in records])
    assert out["flow"]["mass"]["image"]["mean"] == pytest.approx(image.mean(0), abs=1e-5)
    assert out["even_spread"]["image"] == pytest.approx(20 / 35, abs=1e-5)
    assert (
        out["score"]["value"] == pytest.approx(0.5)
        and out["score"]["lo"] < 0.5 < out["score"]["hi"]
    )


def test_cliff_and_sample_cliffs_come_from_the_image_curves() -> None:
    records = [record(i, 4) for i in range(20)] + [record(100 + i, 6) for i in range(10)]
    records += [record(200 + i, None) for i in range(5)]
    out = aggregate(records, L, {"cliff": {"early": 2, "n_boot": 200}})
    mean_curve = np.mean([r["mass"]["image"] for r in records], axis=0)
    expected = detect(mean_curve, 20 / 35, CliffParams(early=2))
    assert out["cliff"]["verdict"] == expected.verdict == "cliff"
    assert out["cliff"]["layer"] == expected.layer
    assert out["cliff"]["lo"] <= out["cliff"]["layer"] <= out["cliff"]["hi"]
    assert out["cliff"]["params"]["early"] == 2
    assert out["sample_cliffs"]["histogram"] == {"4": 20, "6": 10}
    assert out["sample_cliffs"]["no_collapse"] == 5


def test_failed_lines_are_counted_and_maps_listed() -> None:
    records = [record(i, 5) for i in range(4)]
    records[1]["map"] = {"file": "maps/s1.json", "image": "images/s1.png"}
    records.append({"key": "bad", "id": "bad", "error": "image is corrupt"})
    truncated = record(9, 5)
    truncated["mass"]["image"] = truncated["mass"]["image"][:3]  # wrong number of layers
    records.append(truncated)
    out = aggregate(records, L, {})
    assert (out["n_samples"], out["n_failed"]) == (4, 2)
    assert out["maps"] == [{"id": "s1", "file": "maps/s1.json", "image": "images/s1.png"}]


def test_corpus_score_override_and_no_scores() -> None:
    records = [record(i, 5, score=None) for i in range(5)]
    assert aggregate(records, L, {})["score"] is None
    given = {"value": 0.7, "lo": 0.6, "hi": 0.8, "n": 5}
    assert aggregate(records, L, {}, score=given)["score"] == given


def test_empty_run_is_readable() -> None:
    out = aggregate([], L, {}, complete=False)
    json.dumps(json_safe(out), allow_nan=False)
    assert out["n_samples"] == 0 and out["cliff"]["verdict"] == "insufficient-data"
    assert out["score"] is None and out["even_spread"] == {}

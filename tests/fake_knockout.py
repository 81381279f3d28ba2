"""A realistic fake knockout run (see tests/fake_runs.py): synthetic per-sample changes whose
result.json is made by the real aggregator, so samples and result agree."""

from __future__ import annotations

from typing import Any

import numpy as np

from cliffscope.aggregate.knockout import aggregate
from cliffscope.knockout_edges import DEFAULT_EDGES
from cliffscope.store import RunDir, RunStore
from tests.fake_runs import COLOURS, _create, _ids, _write_samples


def knockout_lines(
    ids: list[str], num_layers: int, cliff_layer: int, seed: int = 0
) -> list[dict[str, Any]]:
    """Blocking image->last costs ~80% below `cliff_layer`, image->instruction ~30% below
    `cliff_layer - 1`, instruction->last ~50% in the first window; the rest is noise."""
    rng = np.random.default_rng(seed + 2000)
    edges = [str(e) for e in DEFAULT_EDGES]
    starts = np.arange(num_layers)
    cost = {
        "image->last": np.where(starts < cliff_layer, 0.8, 0.0),
        "image->instruction": np.where(starts < cliff_layer - 1, 0.3, 0.0),
        "instruction->last": np.where(starts == 0, 0.5, 0.0),
        "system->last": np.zeros(num_layers),
    }
    lines = []
    for i, sid in enumerate(ids):
        changes = {
            e: np.clip(-cost[e] + rng.normal(0, 0.01, num_layers), -1, None).round(6).tolist()
            for e in edges
        }
        answer = COLOURS[i % len(COLOURS)]
        lines.append(
            {
                "key": sid,
                "id": sid,
                "question": "What colour is the shape?",
                "prediction": answer,
                "answer_ids": [10 + i % len(COLOURS)],
                "references": [answer],
                "score": 1.0,
                "num_layers": num_layers,
                "p_first": 0.9,
                "p_answer": 0.9,
                "first": changes,
                "answer": changes,
            }
        )
    return lines


def make_knockout_run(
    store: RunStore,
    seed: int = 0,
    num_layers: int = 8,
    n_samples: int = 20,
    *,
    cliff_layer: int = 3,
    window: int = 3,
    status: str = "done",
    profile: str = "demo-llava",
    model: str = "builtin:demo",
    task: str = "shapes-vqa",
    run_id: str | None = None,
    id_prefix: str = "s",
    partner_cliffs: dict[str, Any] | None = None,
) -> RunDir:
    ids = _ids(n_samples, id_prefix)
    edges = [str(e) for e in DEFAULT_EDGES]
    params = {"edges": ",".join(edges), "window": window, "layers": "all"}
    run = _create(store, "knockout", run_id, profile, model, task, params, ids, seed, status, 900)
    lines = knockout_lines(ids, num_layers, cliff_layer, seed)
    _write_samples(run, lines)
    run.append_event("progress", done=n_samples, total=n_samples)
    result = aggregate(
        lines,
        edges=edges,
        starts=list(range(num_layers)),
        window=window,
        num_layers=num_layers,
        metric="exact_match",
        partner_cliffs=partner_cliffs or {"flow_cliff": None, "sweep_cliff": None},
        complete=status == "done",
        extra={"engine": "shared", "max_new_tokens": 16},
    )
    result["updated"] = "2026-01-02T03:19:15Z"
    run.write_result(result)
    return run

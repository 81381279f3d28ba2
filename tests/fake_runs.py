"""Realistic fake run directories (analysis and sweep) from deterministic synthetic numbers.

Reports, the dashboard and their snapshot tests need finished runs without a model. These
builders write what a worker would: run.toml (through `RunStore.create`, then fixed timestamps,
host and versions so output is reproducible), samples.jsonl, events.jsonl, result.json
(following docs/architecture.md) and, for analysis, maps/<id>.json + images/<id>.png.

The result numbers are computed from the sample lines, so samples and result agree. One sample
carries Markdown-hostile text (pipes, backticks, HTML, a newline) to exercise escaping.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

from cliffscope.store import RunDir, RunStore
from cliffscope.store.atomic import atomic_write_bytes, atomic_write_json
from cliffscope.store.jsonl import JsonlWriter

GROUPS = ("system", "image", "instruction", "output")
CREATED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
VERSIONS = {
    "cliffscope": "0.1.0",
    "python": "3.11.9",
    "torch": "2.14.1",
    "transformers": "5.23.0",
    "accelerate": "1.2.0",
}
HOSTILE_PREDICTION = "red | `rm -rf` *bold* _x_ <b>html</b>\n[link](http://x) # not a heading"
COLOURS = ("red", "green", "blue", "yellow")
IMAGE_SIZE = (64, 48)  # width, height: not square, so box handling is exercised
GRID = (4, 4)


def _profile(name: str, model: str) -> dict[str, Any]:
    return {
        "name": name,
        "family": "llava",
        "model": model,
        "revision": "0123abcd",
        "dtype": "float32",
        "attn_implementation": "sdpa",
        "trust_remote_code": False,
        "use_safetensors": True,
        "batch_size": 8,
        "max_new_tokens": 16,
        "notes": "",
    }


def _task(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "spec": {
            "name": name,
            "description": "colour of the shape",
            "source": "shapes",
            "split": "validation",
            "prompt_template": "{question}",
            "answer_kind": "short",
            "metric": "exact_match",
            "max_new_tokens": 16,
        },
    }


def _ids(n: int, prefix: str = "s") -> list[str]:
    return [f"{prefix}-{i:06d}" for i in range(n)]


def _create(
    store: RunStore,
    kind: str,
    run_id: str | None,
    profile: str,
    model: str,
    task: str,
    params: dict[str, Any],
    ids: list[str],
    seed: int,
    status: str,
    offset_s: int,
) -> RunDir:
    created = CREATED + timedelta(seconds=offset_s)
    run_id = run_id or f"{created:%Y%m%d-%H%M%S}-{kind}-{profile}-{task}-{seed:04x}"
    run = store.create(
        kind=kind,
        profile=_profile(profile, model),
        task=_task(task),
        params=params,
        subset={"limit": len(ids), "seed": seed, "ids": ids, "hash": f"sha256:{seed:08x}feed"},
        run_id=run_id,
    )
    fields: dict[str, Any] = {
        "status": status,
        "created": created,
        "host": "fake-host",
        "versions": VERSIONS,
    }
    if status != "queued":
        fields["started"] = created + timedelta(seconds=5)
    if status in ("done", "failed", "cancelled"):
        fields["finished"] = created + timedelta(seconds=130)
    run.update_spec(**fields)
    return run


def _interval(values: np.ndarray, lo: float = -1.0, hi: float = 1.0) -> dict[str, float]:
    """Mean and a normal-approximation 95% interval (the fake needs shape, not rigour)."""
    mean = float(values.mean())
    half = 1.96 * float(values.std(ddof=1)) / np.sqrt(len(values)) if len(values) > 1 else 0.0
    return {
        "mean": round(mean, 6),
        "lo": round(max(mean - half, lo), 6),
        "hi": round(min(mean + half, hi), 6),
    }


def _write_samples(run: RunDir, lines: list[dict[str, Any]]) -> None:
    with JsonlWriter(run.path / "samples.jsonl", fsync=False) as writer:
        for line in lines:
            writer.write(line)


def _fake_image(rng: np.random.Generator) -> bytes:
    import io

    from PIL import Image, ImageDraw

    width, height = IMAGE_SIZE
    img = Image.new("RGB", IMAGE_SIZE, (235, 235, 235))
    draw = ImageDraw.Draw(img)
    x0, y0 = int(rng.integers(4, width // 2)), int(rng.integers(4, height // 2))
    draw.ellipse([x0, y0, x0 + 20, y0 + 16], fill=(200, 40, 40))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _fake_map(rng: np.random.Generator, sample_id: str, num_layers: int) -> dict[str, Any]:
    rows, cols = GRID
    yy, xx = np.mgrid[0:rows, 0:cols]
    attention, cam = {}, {}
    for layer in range(num_layers):
        cy, cx = rng.uniform(0, rows - 1), rng.uniform(0, cols - 1)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 2.0)
        # one row-major list per grid, as cliffscope.engines.attention_maps writes them
        attention[str(layer)] = [np.round(blob / blob.sum(), 6).ravel().tolist()]
        cam[str(layer)] = [np.round(blob / blob.max(), 6).ravel().tolist()]
    return {
        "id": sample_id,
        "grids": [{"label": "image", "rows": rows, "cols": cols, "box": [0, 0, *IMAGE_SIZE]}],
        "attention": attention,
        "cam": cam,
    }


def make_analysis_run(
    store: RunStore,
    seed: int = 0,
    num_layers: int = 8,
    n_samples: int = 20,
    *,
    cliff_layer: int | None = None,
    n_done: int | None = None,
    n_maps: int = 2,
    status: str = "done",
    profile: str = "demo-llava",
    model: str = "builtin:demo",
    task: str = "shapes-vqa",
    run_id: str | None = None,
) -> RunDir:
    """A finished (or, with `n_done < n_samples`, partial) attention-flow analysis run."""
    rng = np.random.default_rng(seed)
    cliff = num_layers // 2 - 1 if cliff_layer is None else cliff_layer
    ids = _ids(n_samples)
    done = ids[: n_samples if n_done is None else n_done]
    params = {"query": "last", "heads": "mean", "cam": True, "cam_samples": n_maps}
    run = _create(store, "analysis", run_id, profile, model, task, params, ids, seed, status, 0)

    n_tok = {"system": 5, "image": 16, "instruction": 7, "output": 2}
    lines, sample_cliffs = [], []
    for i, sid in enumerate(done):
        own = int(np.clip(cliff + rng.integers(-1, 2), 1, num_layers - 1))
        collapses = rng.random() > 0.15
        layer = np.arange(num_layers)
        early = (layer <= own) | (not collapses)
        image = np.where(early, 0.5, 0.06) + rng.normal(0, 0.03, num_layers)
        image = np.clip(image, 0.01, 0.7)
        system = np.clip(0.25 + rng.normal(0, 0.02, num_layers) + (0.5 - image) * 0.6, 0.01, 0.9)
        output = np.clip(0.02 + rng.normal(0, 0.005, num_layers), 0.0, 0.1)
        instruction = np.clip(1.0 - image - system - output, 0.0, 1.0)
        mass = {"system": system, "image": image, "instruction": instruction, "output": output}
        correct = rng.random() < 0.85
        answer = COLOURS[i % len(COLOURS)]
        prediction = answer if correct else COLOURS[(i + 1) % len(COLOURS)]
        references = [answer]
        if i == 1:  # text straight from a dataset can hold anything
            prediction, references = HOSTILE_PREDICTION, ["a|b", "<i>c</i>"]
        sample_cliffs.append(own if collapses else None)
        lines.append(
            {
                "key": sid,
                "id": sid,
                "question": "What colour is the shape?" if i != 1 else "Is it *red* | `blue`?",
                "prediction": prediction,
                "references": references,
                "score": 1.0 if correct else 0.0,
                "n_tokens": n_tok,
                "mass": {g: np.round(v, 6).tolist() for g, v in mass.items()},
                "density": {g: np.round(v / n_tok[g], 8).tolist() for g, v in mass.items()},
                "even_spread": {g: round(n_tok[g] / sum(n_tok.values()), 6) for g in GROUPS},
                "cliff": own if collapses else None,
            }
        )
        if i < n_maps:
            lines[-1]["map"] = {"file": f"maps/{sid}.json", "image": f"images/{sid}.png"}
    _write_samples(run, lines)
    run.append_event("progress", done=len(done), total=n_samples)

    flow: dict[str, dict[str, Any]] = {"mass": {}, "density": {}}
    for measure in flow:
        for g in GROUPS:
            per_layer = np.array([line[measure][g] for line in lines])
            stats = [_interval(per_layer[:, layer], 0.0) for layer in range(num_layers)]
            flow[measure][g] = {k: [s[k] for s in stats] for k in ("mean", "lo", "hi")}
    total = sum(n_tok.values())
    scores = np.array([line["score"] for line in lines])
    score = _interval(scores, 0.0, 1.0)
    histogram: dict[str, int] = {}
    for c in sample_cliffs:
        if c is not None:
            histogram[str(c)] = histogram.get(str(c), 0) + 1
    found = [c for c in sample_cliffs if c is not None]
    maps = []
    for sid in done[:n_maps]:
        atomic_write_json(run.path / "maps" / f"{sid}.json", _fake_map(rng, sid, num_layers))
        atomic_write_bytes(run.path / "images" / f"{sid}.png", _fake_image(rng))
        maps.append({"id": sid, "file": f"maps/{sid}.json", "image": f"images/{sid}.png"})
    run.write_result(
        {
            "schema_version": 1,
            "kind": "analysis",
            "num_layers": num_layers,
            "n_samples": len(done),
            "n_failed": 0,
            "metric": "exact_match",
            "higher_is_better": True,
            "complete": len(done) == n_samples,
            "updated": "2026-01-02T03:06:15Z",
            "query": "last",
            "heads": "mean",
            "groups": list(GROUPS),
            "layers": list(range(num_layers)),
            "flow": flow,
            "even_spread": {g: round(n_tok[g] / total, 6) for g in GROUPS},
            "cliff": {
                "layer": cliff,
                "lo": max(cliff - 1, 0),
                "hi": min(cliff + 1, num_layers - 1),
                "verdict": "cliff",
                "reason": f"image mass drops below half its early level after layer {cliff}",
                "params": {"tau": 0.5, "rho": 0.5},
                "no_collapse_fraction": 0.0,
            },
            "sample_cliffs": {
                "histogram": dict(sorted(histogram.items(), key=lambda kv: int(kv[0]))),
                "no_collapse": sum(c is None for c in sample_cliffs),
                "insufficient": 0,
                "median": float(np.median(found)) if found else None,
            },
            "score": {"value": score["mean"], "lo": score["lo"], "hi": score["hi"], "n": len(done)},
            "maps": maps,
        }
    )
    return run


def make_sweep_run(
    store: RunStore,
    seed: int = 0,
    num_layers: int = 8,
    n_samples: int = 20,
    *,
    cliff_layer: int | None = None,
    ks: list[int] | None = None,
    status: str = "done",
    profile: str = "demo-llava",
    model: str = "builtin:demo",
    task: str = "shapes-vqa",
    run_id: str | None = None,
    tolerance: float = 0.01,
    flow_cliff: dict[str, Any] | None = None,
    id_prefix: str = "s",
) -> RunDir:
    """A truncation sweep: chance at k = 0, baseline from about `cliff_layer` on.

    `ks` (default 0..L) lets a test build an unfinished sweep with only some points done.
    `id_prefix="shapes"` gives ids the shapes-vqa task can redraw (the Samples tab's picture).
    `flow_cliff` is what the sweep worker records of a matching analysis run's cliff
    (`{"run", "n_samples", "layer", "lo", "hi", "verdict", "reason"}`), else null.
    """
    rng = np.random.default_rng(seed + 1000)
    cliff = max(1, num_layers // 4) if cliff_layer is None else cliff_layer
    all_ks = list(range(num_layers + 1))
    ks = all_ks if ks is None else ks
    ids = _ids(n_samples, id_prefix)
    params = {"mode": "drop", "layers": all_ks}
    run = _create(store, "sweep", run_id, profile, model, task, params, ids, seed, status, 600)

    base = rng.random(n_samples) < 0.9
    needs = cliff - (rng.random(n_samples) < 0.3).astype(int)  # some need one layer less
    lucky = rng.random((num_layers + 1, n_samples)) < 0.25
    lines = []
    for i, sid in enumerate(ids):
        answer = COLOURS[i % len(COLOURS)]
        lines.append(
            {
                "key": f"{sid}@base",
                "id": sid,
                "k": "base",
                "question": "What colour is the shape?",
                "references": [answer],
                "prediction": answer if base[i] else "purple",
                "score": float(base[i]),
            }
        )
    correct: dict[int, np.ndarray] = {}
    for k in ks:
        correct[k] = np.where(k >= needs, base, lucky[k])
        for i, sid in enumerate(ids):
            ok = bool(correct[k][i])
            lines.append(
                {
                    "key": f"{sid}@{k}",
                    "id": sid,
                    "k": k,
                    "prediction": COLOURS[i % len(COLOURS)] if ok else "purple",
                    "score": float(ok),
                }
            )
    _write_samples(run, lines)
    run.append_event("progress", done=len(ks), total=len(all_ks))

    baseline = _interval(base.astype(float), 0.0, 1.0)
    points = []
    for k in ks:
        diff = correct[k].astype(float) - base.astype(float)
        d = _interval(diff)
        image_share = 16 / 30
        points.append(
            {
                "k": k,
                "score": round(float(correct[k].mean()), 6),
                "delta": d["mean"],
                "lo": d["lo"],
                "hi": d["hi"],
                "flips_to_wrong": int((base & ~correct[k]).sum()),
                "flips_to_right": int((~base & correct[k]).sum()),
                "changed": int((base != correct[k]).sum()),
                "flops_saved": round(image_share * (num_layers - k) / num_layers * 0.9, 6),
                "kv_saved": round(image_share * (num_layers - k) / num_layers, 6),
                "latency_ms": round(10.0 + 0.8 * k + rng.uniform(0, 0.2), 3),
            }
        )
        points[-1]["recovered"] = points[-1]["score"] >= baseline["mean"] - tolerance
    cliff_k = None
    for p in reversed(points):
        if p["score"] < baseline["mean"] - tolerance:
            break
        cliff_k = p["k"]
    complete = ks == all_ks
    run.write_result(
        {
            "schema_version": 1,
            "kind": "sweep",
            "num_layers": num_layers,
            "n_samples": n_samples,
            "metric": "exact_match",
            "higher_is_better": True,
            "complete": complete,
            "updated": "2026-01-02T03:16:15Z",
            "mode": "drop",
            "keep_ratio": None,
            "layers": all_ks,
            "interval": "paired bootstrap 95% over samples",
            "baseline": {"score": baseline["mean"], "lo": baseline["lo"], "hi": baseline["hi"]},
            "points": points,
            "cliff": {
                "layer": cliff_k,
                "verdict": "cliff" if cliff_k is not None else "never-recovers",
                "reason": f"score stays within {tolerance} of the baseline from k = {cliff_k}",
                "tolerance": tolerance,
            },
            "flow_cliff": flow_cliff,
            "latency_full_ms": 16.5,
            "latency_batch_size": 8,
            "engine": "shared",
            "max_new_tokens": 16,
            "computed_as": "drop",
        }
    )
    return run

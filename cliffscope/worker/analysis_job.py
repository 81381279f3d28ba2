"""The analysis job: answer, score and measure attention flow for every sample of the subset.

Per batch: greedy answers, then one teacher-forced forward with flow capture; for the map
samples (the first `map_samples` ids, or all with `cam = true`) also attention maps and
LLaVA-CAM, written to `maps/<id>.json` with the image in `images/<id>.png`. One line per
sample goes to samples.jsonl (the resume key is the sample id), and `result.json` is rebuilt
from all lines every `checkpoint_s` seconds and at the end. Samples already in samples.jsonl
are skipped, so a resumed run continues where it stopped.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Sequence
from typing import Any

from cliffscope.aggregate.analysis import GROUPS, aggregate
from cliffscope.aggregate.cliff import CliffParams, detect
from cliffscope.errors import CliffscopeError
from cliffscope.store.atomic import atomic_write_bytes, atomic_write_text, json_safe
from cliffscope.worker.batch_loop import run_in_batches
from cliffscope.worker.context import JobContext

_DIGITS = 6


def _round(values: Sequence[float]) -> list[float]:
    return [float(f"{v:.{_DIGITS}g}") for v in values]


class AnalysisJob:
    """State of one analysis run inside the worker (the model is loaded once)."""

    def __init__(self, ctx: JobContext) -> None:
        from cliffscope.metrics.registry import get_metric

        self.ctx = ctx
        params = ctx.params
        self.params = params
        self.query = str(params.get("query", "last"))
        self.heads = str(params.get("heads", "mean"))
        self.cam_all = bool(params.get("cam", False))
        self.smooth_n = int(params.get("smooth_n", 0))
        self.smooth_sigma = float(params.get("smooth_sigma", 0.15))
        self.checkpoint_s = float(params.get("checkpoint_s", 10.0))
        self.cliff = CliffParams.from_dict(params.get("cliff"))
        self.task = ctx.task
        self.metric = get_metric(self.task.spec.metric)
        ids = ctx.all_ids  # the whole subset, so a sharded run maps the same samples
        self.map_ids = set(ids if self.cam_all else ids[: int(params.get("map_samples", 4))])
        self.max_new_tokens = ctx.max_new_tokens
        self.records: list[dict[str, Any]] = ctx.run.samples()
        self.adapter: Any = None

    # ---- the loop ---------------------------------------------------------------------------
    def run(self) -> None:
        ctx = self.ctx
        ids = ctx.ids
        todo = [i for i in ids if i not in ctx.done_keys]
        done, total = len(ids) - len(todo), len(ids)
        ctx.progress(done, total, force=True)
        if todo:
            self.adapter = ctx.load_adapter()
        run_in_batches(
            ctx,
            todo,
            done,
            self.process,
            self._keep,
            self.write_result,
            self.checkpoint_s,
        )

    def _keep(self, record: dict[str, Any]) -> None:
        self.ctx.append(record)
        self.records.append(record)

    def num_layers(self) -> int:
        if self.adapter is not None:
            return self.adapter.num_layers
        lengths = [len(r["mass"]["image"]) for r in self.records if "mass" in r]
        return lengths[0] if lengths else 0

    def write_result(self, complete: bool) -> None:
        # subset order, however shards and resumes interleaved the lines (the maps list shows it)
        order = {sample_id: n for n, sample_id in enumerate(self.ctx.all_ids)}
        records = sorted(self.records, key=lambda r: order.get(str(r.get("id")), len(order)))
        result = aggregate(
            records,
            self.num_layers(),
            self.params,
            metric=self.metric.name,
            higher_is_better=self.metric.higher_is_better,
            complete=complete,
            score=self._corpus_score(final=complete),
        )
        self.ctx.write_result(result)

    def _corpus_score(self, final: bool) -> dict[str, Any] | None:
        """Corpus-level metrics (CIDEr) are scored on the whole set, not per sample.

        Checkpoints get the point value only; the interval (hundreds of corpus scorings)
        is computed once, at the end.
        """
        if not self.metric.corpus_level:
            return None
        import numpy as np

        from cliffscope.metrics.bootstrap import bootstrap_corpus, corpus_scorer

        scored = [r for r in self.records if "prediction" in r and not r.get("error")]
        if not scored:
            return None
        preds = [r["prediction"] for r in scored]
        refs = [r["references"] for r in scored]
        scorer = corpus_scorer(self.metric, preds, refs)
        if not final:
            return {
                "value": scorer(np.arange(len(scored))),
                "lo": None,
                "hi": None,
                "n": len(scored),
            }
        value, lo, hi = bootstrap_corpus(scorer, len(scored))
        return {"value": value, "lo": lo, "hi": hi, "n": len(scored)}

    # ---- one batch --------------------------------------------------------------------------
    def process(self, batch_ids: list[str]) -> list[dict[str, Any]]:
        samples, failed = [], []
        for sample_id in batch_ids:
            try:
                samples.append(self.task.get(sample_id))
            except CliffscopeError as exc:
                self.ctx.log(f"{sample_id}: {exc.what}", level="warning")
                failed.append({"key": sample_id, "id": sample_id, "error": exc.what})
        if not samples:
            return failed
        return self.measure(samples) + failed

    def measure(self, samples: list[Any]) -> list[dict[str, Any]]:
        from cliffscope.engines.capture import capture_flow

        adapter = self.adapter
        images, prompts = [s.image for s in samples], [s.prompt for s in samples]
        # The decoding policy never emits image placeholders, so teacher-forcing the answer
        # cannot add a second image.
        answers = adapter.generate_ids(adapter.build_batch(images, prompts), self.max_new_tokens)
        predictions = [adapter.decode(a) for a in answers]
        batch = adapter.build_batch(images, prompts, answers=answers)
        map_rows = [r for r, s in enumerate(samples) if s.id in self.map_ids]
        flow = capture_flow(adapter, batch, self.query, self.heads, map_rows)  # type: ignore[arg-type]
        mass, density, even = flow.mass(), flow.density(), flow.even_spread()
        scores: list[float | None] = [None] * len(samples)
        if not self.metric.corpus_level:
            refs = [s.references for s in samples]
            choices = [s.choices for s in samples] if any(s.choices for s in samples) else None
            scores = list(self.metric.score_batch(predictions, refs, choices).per_sample)
        records = []
        image = GROUPS.index("image")
        for r, sample in enumerate(samples):
            verdict = detect(mass[r, :, image], float(even[r, image]), self.cliff)
            record: dict[str, Any] = {
                "key": sample.id,
                "id": sample.id,
                "question": sample.question,
                "prediction": predictions[r],
                "answer_ids": answers[r],
                "references": list(sample.references),
                "score": scores[r],
                "n_tokens": batch.groups[r].counts(),
                "n_query": int(flow.valid[r].sum()),
                "mass": {g: _round(mass[r, :, j]) for j, g in enumerate(GROUPS)},
                "density": {g: _round(density[r, :, j]) for j, g in enumerate(GROUPS)},
                "even_spread": {g: float(f"{even[r, j]:.6g}") for j, g in enumerate(GROUPS)},
                "cliff": verdict.layer,
            }
            records.append(record)
        if map_rows:
            self.write_maps(samples, map_rows, answers, batch, flow, records)
        return records

    def write_maps(
        self,
        samples: list[Any],
        rows: list[int],
        answers: list[list[int]],
        batch: Any,
        flow: Any,
        records: list[dict[str, Any]],
    ) -> None:
        """Attention + CAM maps for `rows`; CAM runs on a batch of just those rows."""
        from cliffscope.engines.attention_maps import map_document
        from cliffscope.engines.cam import llava_cam

        adapter, run_path = self.adapter, self.ctx.run.path
        sub = adapter.build_batch(
            [samples[r].image for r in rows],
            [samples[r].prompt for r in rows],
            answers=[answers[r] for r in rows],
        )
        cams = llava_cam(adapter, sub, self.smooth_n, self.smooth_sigma)
        for j, r in enumerate(rows):
            sample = samples[r]
            doc = map_document(
                sample.id,
                adapter.image_grids(batch, r),
                flow.key_attention[r],
                cams[j],
                cam_grids=adapter.image_grids(sub, j),
                query=self.query,
                heads=self.heads,
                question=sample.question,
                prediction=records[r]["prediction"],
                references=list(sample.references),
                image_size=list(sample.image.size),
                cam_params={"smooth_n": self.smooth_n, "smooth_sigma": self.smooth_sigma},
            )
            name = _file_name(sample.id)
            text = json.dumps(json_safe(doc), separators=(",", ":"), allow_nan=False)
            atomic_write_text(run_path / "maps" / f"{name}.json", text + "\n")
            png = io.BytesIO()
            sample.image.convert("RGB").save(png, format="PNG")
            atomic_write_bytes(run_path / "images" / f"{name}.png", png.getvalue())
            records[r]["map"] = {"file": f"maps/{name}.json", "image": f"images/{name}.png"}


def _file_name(sample_id: str) -> str:
    """Sample ids come from datasets; keep file names to a safe alphabet."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in sample_id).lstrip(".")[:80]
    if safe != sample_id:  # two ids may clean to the same name: keep them apart
        safe = f"{safe}-{hashlib.sha1(sample_id.encode()).hexdigest()[:8]}"
    return safe


def run_analysis(ctx: JobContext) -> None:
    """Entry point for `python -m cliffscope.worker RUN_DIR` on an analysis run."""
    AnalysisJob(ctx).run()


def finalize(ctx: JobContext) -> None:
    """Rank 0 of a data-parallel run, after every rank finished: result.json from all shards."""
    job = AnalysisJob(ctx)  # reads every samples*.jsonl; no model needed to aggregate
    done = ctx.run.done_keys()
    job.write_result(complete=all(i in done for i in ctx.all_ids))

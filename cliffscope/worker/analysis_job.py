"""The analysis job: answer, score and measure attention flow for every sample of the subset.

Per batch: greedy answers, then one teacher-forced forward with flow capture; for the map
samples (the first `map_samples` ids, or all with `cam = true`) also attention maps and
LLaVA-CAM, written through `report.mapfile` (maps/<id>.json, images/<id>.png). One line per
sample (the resume key is the sample id); `aggregate.analysis` turns the lines into
result.json. Batching, resume, checkpoints and data-parallel finalising are `worker.job.Job`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cliffscope.aggregate.analysis import aggregate
from cliffscope.aggregate.cliff import CliffParams, detect
from cliffscope.vocab import GROUPS, stored
from cliffscope.worker.job import Job


def _round(values: Sequence[float]) -> list[float]:
    return [stored(v) for v in values]


class AnalysisJob(Job):
    """State of one analysis run inside the worker (the model is loaded once)."""

    def __init__(self, ctx: Any) -> None:
        from cliffscope.metrics.registry import get_metric

        super().__init__(ctx)
        p = self.params
        self.cliff = CliffParams.from_dict(p.cliff)
        self.metric = get_metric(self.task.spec.metric)
        ids = ctx.all_ids  # the whole subset, so a sharded run maps the same samples
        self.map_ids = set(ids if p.cam else ids[: p.map_samples])
        self.max_new_tokens = ctx.max_new_tokens
        self.adapter: Any = None

    def prepare(self, todo: list[str]) -> None:
        if todo:
            self.adapter = self.ctx.load_adapter()

    def num_layers(self) -> int:
        if self.adapter is not None:
            return self.adapter.num_layers
        lengths = [len(r["mass"]["image"]) for r in self.records if "mass" in r]
        return lengths[0] if lengths else 0

    def aggregate(self, complete: bool) -> dict[str, Any]:
        # subset order, however shards and resumes interleaved the lines (the maps list shows it)
        order = {sample_id: n for n, sample_id in enumerate(self.ctx.all_ids)}
        records = sorted(self.records, key=lambda r: order.get(str(r.get("id")), len(order)))
        return aggregate(
            records,
            self.num_layers(),
            self.ctx.params,
            metric=self.metric.name,
            higher_is_better=self.metric.higher_is_better,
            complete=complete,
            score=self._corpus_score(final=complete),
        )

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
            value = scorer(np.arange(len(scored)))
            return {"value": value, "lo": None, "hi": None, "n": len(scored)}
        value, lo, hi = bootstrap_corpus(scorer, len(scored))
        return {"value": value, "lo": lo, "hi": hi, "n": len(scored)}

    # ---- one batch --------------------------------------------------------------------------
    def measure(self, samples: list[Any]) -> list[dict[str, Any]]:
        from cliffscope.engines.capture import capture_flow

        adapter, p = self.adapter, self.params
        answers, predictions, batch = self.answered_batch(samples)
        map_rows = [r for r, s in enumerate(samples) if s.id in self.map_ids]
        flow = capture_flow(adapter, batch, p.query, p.heads, map_rows)  # type: ignore[arg-type]
        mass, density, even = flow.mass(), flow.density(), flow.even_spread()
        scores = self.sample_scores(samples, predictions)
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
                "even_spread": {g: stored(even[r, j]) for j, g in enumerate(GROUPS)},
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
        from cliffscope.report.mapfile import write_map

        adapter, p = self.adapter, self.params
        sub = adapter.build_batch(
            [samples[r].image for r in rows],
            [samples[r].prompt for r in rows],
            answers=[answers[r] for r in rows],
        )
        cams = llava_cam(adapter, sub, p.smooth_n, p.smooth_sigma)
        for j, r in enumerate(rows):
            sample = samples[r]
            doc = map_document(
                sample.id,
                adapter.image_grids(batch, r),
                flow.key_attention[r],
                cams[j],
                cam_grids=adapter.image_grids(sub, j),
                query=p.query,
                heads=p.heads,
                question=sample.question,
                prediction=records[r]["prediction"],
                references=list(sample.references),
                image_size=list(sample.image.size),
                cam_params={"smooth_n": p.smooth_n, "smooth_sigma": p.smooth_sigma},
            )
            records[r]["map"] = write_map(self.ctx.run.path, sample.id, doc, sample.image)

"""The knockout job: answer every sample, then block each edge in every window and re-score.

Per batch: the baseline answers under the decoding policy (`ModelAdapter.generate_ids`, the
same answers the analysis and the sweep give), one teacher-forced batch, and the knockout
engine (`engines.knockout_shared`, or `engines.knockout.knockout_naive` with `--engine
naive`) for every (edge, window start). One line per sample (the resume key is the sample
id) with the baseline answer, its probabilities and the relative change of each per edge and
start; `aggregate.knockout` turns the lines into result.json, with the cliffs of the partner
kinds (the newest finished analysis and sweep of the same profile and task). Batching, resume,
checkpoints and data-parallel finalising are `worker.job.Job`'s.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cliffscope.aggregate.knockout import aggregate
from cliffscope.errors import CliffscopeError
from cliffscope.vocab import stored
from cliffscope.worker.job import Job


def _round(values: Any) -> list[float | None]:
    return [stored(v) if np.isfinite(v) else None for v in values]


def resolve_starts(spec: Any, num_layers: int) -> list[int]:
    """The run's `layers` param ("all" or a list) as sorted window starts within 0..L-1."""
    if spec in (None, "all"):
        return list(range(num_layers))
    starts = sorted({int(s) for s in spec})
    bad = [s for s in starts if not 0 <= s < num_layers]
    if bad or not starts:
        raise CliffscopeError(
            f"window starts {bad or starts} outside 0..{num_layers - 1} for this model",
            hint=f"the model has {num_layers} decoder layers; a window starts at 0..L-1",
        )
    return starts


class KnockoutJob(Job):
    """State of one knockout run inside the worker (the model is loaded once)."""

    def __init__(self, ctx: Any) -> None:
        from cliffscope.metrics.registry import get_metric

        super().__init__(ctx)
        self.edges = self.params.edge_list()
        self.metric = get_metric(self.task.spec.metric)
        self.max_new_tokens = ctx.max_new_tokens
        self.adapter: Any = None

    def prepare(self, todo: list[str]) -> None:
        if todo:
            self.adapter = self.ctx.load_adapter()
            self.starts()  # a bad --layers fails before the first batch

    def num_layers(self) -> int:
        if self.adapter is not None:
            return int(self.adapter.num_layers)
        found = [int(r["num_layers"]) for r in self.records if "num_layers" in r]
        return found[0] if found else 0

    def starts(self) -> list[int]:
        n = self.num_layers()
        return resolve_starts(self.params.layers, n) if n else []

    # ---- one batch --------------------------------------------------------------------------
    def measure(self, samples: list[Any]) -> list[dict[str, Any]]:
        from cliffscope.engines.knockout import knockout_naive
        from cliffscope.engines.knockout_shared import knockout_shared

        adapter, p = self.adapter, self.params
        answers, predictions, batch = self.answered_batch(samples)
        engine = knockout_shared if p.engine == "shared" else knockout_naive
        out = engine(adapter, batch, self.edges, p.window, self.starts())
        first, answer = out.first_change(), out.answer_change()
        scores = self.sample_scores(samples, predictions)
        records = []
        for r, sample in enumerate(samples):
            record: dict[str, Any] = {
                "key": sample.id,
                "id": sample.id,
                "question": sample.question,
                "prediction": predictions[r],
                "answer_ids": answers[r],
                "references": list(sample.references),
                "score": scores[r],
                "num_layers": out.n_layers,
                "p_first": _round([np.exp(out.base_first[r])])[0],
                "p_answer": _round([np.exp(out.base_answer[r])])[0],
                "first": {str(e): _round(first[i, :, r]) for i, e in enumerate(out.edges)},
                "answer": {str(e): _round(answer[i, :, r]) for i, e in enumerate(out.edges)},
            }
            if not answers[r]:
                record["empty"] = True  # nothing to teacher-force: no change to measure
            records.append(record)
        return records

    # ---- result -------------------------------------------------------------------------------
    def aggregate(self, complete: bool) -> dict[str, Any]:
        p = self.params
        return aggregate(
            self.records,
            edges=self.edges,
            starts=self.starts(),
            window=p.window,
            num_layers=self.num_layers(),
            metric=self.metric.name,
            higher_is_better=self.metric.higher_is_better,
            tolerance=p.tolerance,
            cliff_on=p.cliff_on,
            score=self._corpus_score(final=complete),
            partner_cliffs=self.partner_cliffs(),
            complete=complete,
            extra={"engine": p.engine, "max_new_tokens": self.max_new_tokens},
        )

    def _corpus_score(self, final: bool) -> dict[str, Any] | None:
        """Corpus-level metrics (CIDEr) score the whole set (the interval only at the end)."""
        if not self.metric.corpus_level:
            return None
        from cliffscope.metrics.bootstrap import bootstrap_corpus, corpus_scorer

        scored = [r for r in self.records if "prediction" in r and not r.get("error")]
        if not scored:
            return None
        preds = [r["prediction"] for r in scored]
        scorer = corpus_scorer(self.metric, preds, [r["references"] for r in scored])
        if not final:
            return {"value": scorer(np.arange(len(scored))), "lo": None, "hi": None}
        value, lo, hi = bootstrap_corpus(scorer, len(scored))
        return {"value": value, "lo": lo, "hi": hi}

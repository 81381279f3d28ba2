"""The prune job: answer every sample untouched and under every (strategy, budget) branch.

Per batch of samples, one prefix-shared prune pass (`engines.prune.prune_shared`: the layers
before the first pruning layer run once and every branch shares them; `--engine naive` runs
each branch on its own) gives the baseline's and every branch's answer, chosen by the
adapter's decoding policy. One line per (sample, branch) goes to samples.jsonl
(`{id}@{branch}`, `{id}@base`), all lines of a sample together, so a sample is either done or
redone on resume. A branch's line carries its answer and token ids, the logit that chose its
first token, its score, the image tokens each stage kept and the FLOPs and KV saved they give.
`aggregate.prune` rebuilds result.json from all lines, with the prefill latency per branch
(timed once, on the first batch). Batching, resume, checkpoints and data-parallel finalising are `worker.job.Job`'s.
"""

from __future__ import annotations

from typing import Any

from cliffscope.aggregate.prune import BASE, aggregate
from cliffscope.worker.job import Job

LATENCY_REPEATS = 3


class PruneJob(Job):
    """State of one prune run inside the worker (the model is loaded once)."""

    def __init__(self, ctx: Any) -> None:
        from cliffscope.metrics.registry import get_metric

        super().__init__(ctx)
        self.metric = get_metric(self.task.spec.metric)
        self.max_new_tokens = ctx.max_new_tokens
        self.planned, self.refused = self.params.plan()
        self.names = [p.name for p in self.planned]
        self.branches: list[Any] = []
        self.latency_ms: dict[str, float] = {}
        self.latency_batch = 0
        self.adapter: Any = None

    def run(self) -> None:
        from cliffscope.engines.prune import Branch, branch_notes, check_branches

        ctx = self.ctx
        self.adapter = ctx.load_adapter()  # num_layers and the checks need the model
        self.branches = [Branch(p.name, p.k, p.strategy) for p in self.planned]
        check_branches(self.adapter, self.branches)
        for item in self.refused:
            ctx.log(f"{item['branch']} skipped: {item['reason']}", level="warning")
        for note in branch_notes(self.adapter, self.branches):
            ctx.log(note)
        if self.params.engine == "shared":
            first = min(b.k for b in self.branches)
            ctx.log(f"layers 0..{first - 1} run once per batch, shared by every branch")
        super().run()

    def prepare(self, todo: list[str]) -> None:
        if self.ctx.ids:
            self.measure_latency((todo or self.ctx.ids)[: self.ctx.profile.batch_size])

    @property
    def num_layers(self) -> int:
        return int(self.adapter.num_layers)

    def keys(self, sample_id: str) -> list[str]:
        return [f"{sample_id}@{BASE}", *(f"{sample_id}@{name}" for name in self.names)]

    def failed_line(self, sample_id: str, error: str) -> dict[str, Any]:
        return {"key": f"{sample_id}@{BASE}", "id": sample_id, "branch": BASE, "error": error}

    # ---- one batch --------------------------------------------------------------------------
    def measure(self, samples: list[Any]) -> list[dict[str, Any]]:
        from cliffscope.engines.prune import prune_naive, prune_shared

        adapter = self.adapter
        batch = adapter.build_batch([s.image for s in samples], [s.prompt for s in samples])
        engine = prune_naive if self.params.engine == "naive" else prune_shared
        out = engine(adapter, batch, self.branches, self.max_new_tokens, [s.id for s in samples])
        counts = [
            (len(g.image), len(g.prompt) - len(g.image)) for g in batch.groups
        ]  # (image, text) tokens of each prompt
        records: list[dict[str, Any]] = []
        for name in [BASE, *self.names]:
            lines = self.branch_lines(samples, name, out, counts)
            if name == BASE:  # what the Samples tab and the report show beside the answers
                for line, sample, (n_image, n_text) in zip(lines, samples, counts, strict=True):
                    line.update(question=sample.question, n_image=n_image, n_text=n_text)
                    line.setdefault("references", list(sample.references))
            records += lines
        return records

    def branch_lines(
        self, samples: list[Any], name: str, out: Any, counts: list[tuple[int, int]]
    ) -> list[dict[str, Any]]:
        """One branch's lines for the batch: answer, token ids, score, kept tokens, savings."""
        from cliffscope.engines.prune import branch_savings
        from cliffscope.flops import DecoderDims

        answers = out.answers[name]
        first = out.first_logits.get(name)
        chosen = [  # the logit that chose each first token: traces shared = naive to the lines
            float(first[r, a[0]]) if first is not None and a else None
            for r, a in enumerate(answers)
        ]
        predictions = [self.adapter.decode(a) for a in answers]
        refs = [list(s.references) for s in samples]
        scores = self.sample_scores(samples, predictions)
        branch = next((b for b in self.branches if b.name == name), None)
        dims = DecoderDims.from_config(self.adapter.text_config)
        lines = []
        for r, sample in enumerate(samples):
            line: dict[str, Any] = {
                "key": f"{sample.id}@{name}",
                "id": sample.id,
                "branch": name,
                "prediction": predictions[r],
                "answer_ids": answers[r],
                "first_logit": chosen[r],
            }
            if self.metric.corpus_level:
                line["references"] = refs[r]
            else:
                line["score"] = scores[r]
            if branch is not None:
                kept = (out.kept.get(name) or [None] * len(samples))[r]
                flops, kv = branch_savings(dims, branch, *counts[r], kept)
                stages = branch.strategy.stage_layers(branch.k)
                if kept is None:  # the naive engine counts nothing: the strategy's own counts
                    kept = [c for _, c in branch.strategy.kept_schedule(branch.k, counts[r][0])]
                line.update(
                    stages=stages,
                    kept=list(kept),
                    flops_saved=round(flops, 6),
                    kv_saved=round(kv, 6),
                )
            lines.append(line)
        return lines

    # ---- costs --------------------------------------------------------------------------------
    def measure_latency(self, sample_ids: list[str]) -> None:
        """Best-of-3 prefill wall time per branch and untouched, on one batch (warmed up)."""
        from cliffscope.engines.prune import prefill_seconds

        samples = self.loadable(sample_ids)
        if not samples:
            return
        adapter = self.adapter
        batch = adapter.build_batch([s.image for s in samples], [s.prompt for s in samples])
        keys = [s.id for s in samples]
        prefill_seconds(adapter, batch, self.branches, 1, keys)  # warm-up
        best = prefill_seconds(adapter, batch, self.branches, LATENCY_REPEATS, keys)
        self.latency_ms = {str(name): round(t * 1e3, 3) for name, t in best.items()}
        self.latency_batch = len(samples)

    # ---- result -------------------------------------------------------------------------------
    def aggregate(self, complete: bool) -> dict[str, Any]:
        p = self.params
        return aggregate(
            self.records,
            branches=[
                {
                    "name": b.name,
                    "strategy": b.strategy.name,
                    "budget": getattr(b.strategy, "budget", None),
                    "k": b.k,
                    "stages": b.strategy.stage_layers(b.k),
                    "params": b.strategy.params(),
                }
                for b in self.branches
            ],
            num_layers=self.num_layers,
            metric=self.metric.name,
            higher_is_better=self.metric.higher_is_better,
            score_set=self.corpus_score_set(),
            latency_ms=self.latency_ms,
            complete=complete,
            extra={
                "layer": p.layer,
                "strategies": list(p.strategies),
                "budgets": list(p.budgets),
                "schedule": p.schedule,
                "random_seed": p.random_seed,
                "engine": p.engine,
                "refused": self.refused,
                "max_new_tokens": self.max_new_tokens,
                "latency_batch_size": self.latency_batch,
            },
        )

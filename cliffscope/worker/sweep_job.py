"""The sweep job: answer every sample untruncated and truncated at every swept k, then score.

Per batch of samples, one prefix-shared sweep (`engines.sweep.shared_sweep`) gives the baseline
and every k's greedy answer; one line per (sample, k) goes to samples.jsonl (`{id}@{k}`,
`{id}@base`), all lines of a sample together, so a sample is either done or redone on resume.
`aggregate.sweep` rebuilds result.json from all lines, with theoretical FLOPs and KV-cache
saved per k, the latency of a truncated forward per k (timed once, on the first batch), and
the cliffs of the partner kinds the sweep kind records (the newest finished analysis of the
same profile and task). Batching, resume, checkpoints and data-parallel finalising are
`worker.job.Job`'s.
"""

from __future__ import annotations

import time
from typing import Any

from cliffscope.aggregate.sweep import BASE, aggregate
from cliffscope.errors import CliffscopeError
from cliffscope.worker.engine_check import EngineCheck
from cliffscope.worker.engine_check import summary as verification_summary
from cliffscope.worker.job import Job


def resolve_layers(spec: Any, num_layers: int, strategy: Any = None) -> list[int]:
    """The run's `layers` param ("all" or a list) as sorted ints within first..L, where the
    token strategy says where k may start (one that ranks by layer k-1's attention: 1)."""
    first = strategy.min_layer if strategy is not None else 0
    if spec in (None, "all"):
        return list(range(first, num_layers + 1))
    layers = sorted({int(k) for k in spec})
    bad = [k for k in layers if not first <= k <= num_layers]
    if bad or not layers:
        raise CliffscopeError(
            f"layers {bad or layers} outside {first}..{num_layers} for this model",
            hint=f"the model has {num_layers} decoder layers; k = {num_layers} is the baseline"
            + (f" (the {strategy.describe()} strategy needs k >= {first})" if first else ""),
        )
    return layers


class SweepJob(Job):
    """State of one sweep run inside the worker (the model is loaded once)."""

    def __init__(self, ctx: Any) -> None:
        from cliffscope.metrics.registry import get_metric

        super().__init__(ctx)
        p = self.params
        self.mode, self.engine = p.mode, p.engine
        self.strategy = p.token_strategy()
        self.metric = get_metric(self.task.spec.metric)
        self.max_new_tokens = ctx.max_new_tokens
        self.layers: list[int] = []
        self.costs: dict[int, dict[str, float | None]] = {}
        self.latency: dict[str, Any] = {}
        self.adapter: Any = None
        self.check: EngineCheck | None = None

    def run(self) -> None:
        # the resume keys depend on the swept layers and the checked samples: model first
        ctx = self.ctx
        self.adapter = ctx.load_adapter()
        if self.mode == "mask" and self.engine == "shared":
            ctx.log(
                "mask mode, shared engine: computed by dropping the image tokens, which gives "
                "the same answers on text positions (tested to 1e-5); --engine naive computes "
                "through masks"
            )
        self.layers = resolve_layers(self.params.layers, self.num_layers, self.strategy)
        self.check = EngineCheck(ctx, self.adapter.dtype, self.engine, self.params.verify)
        if self.check.ids:
            ctx.log(
                f"{self.check.dtype}: {len(self.check.ids)} samples are re-run with the naive "
                "engine to measure how often the shared engine's answers agree (--verify)"
            )
        super().run()

    def prepare(self, todo: list[str]) -> None:
        if self.ctx.ids:
            self.measure_latency((todo or self.ctx.ids)[: self.ctx.profile.batch_size])

    @property
    def num_layers(self) -> int:
        return int(self.adapter.num_layers)

    def keys(self, sample_id: str) -> list[str]:
        checked = self.check.keys(sample_id) if self.check is not None else []
        return [f"{sample_id}@{BASE}", *(f"{sample_id}@{k}" for k in self.layers), *checked]

    def failed_line(self, sample_id: str, error: str) -> dict[str, Any]:
        return {"key": f"{sample_id}@{BASE}", "id": sample_id, "k": BASE, "error": error}

    # ---- one batch --------------------------------------------------------------------------
    def measure(self, samples: list[Any]) -> list[dict[str, Any]]:
        return self.answer(samples)

    def answer(self, samples: list[Any]) -> list[dict[str, Any]]:
        from cliffscope.engines.sweep import naive_sweep, shared_sweep

        adapter = self.adapter
        batch = adapter.build_batch([s.image for s in samples], [s.prompt for s in samples])
        keys = [s.id for s in samples]
        if self.engine == "naive":
            out = naive_sweep(
                adapter,
                batch,
                self.layers,
                self.max_new_tokens,
                self.mode,
                strategy=self.strategy,
                keys=keys,
            )
        else:
            out = shared_sweep(
                adapter, batch, self.layers, self.max_new_tokens, strategy=self.strategy, keys=keys
            )
        refs = [list(s.references) for s in samples]
        records: list[dict[str, Any]] = []
        for k in [BASE, *self.layers]:
            answers = out.answers[BASE if k == self.num_layers else k]
            predictions = [adapter.decode(a) for a in answers]
            scores = self.sample_scores(samples, predictions)
            for r, sample in enumerate(samples):
                record: dict[str, Any] = {
                    "key": f"{sample.id}@{k}",
                    "id": sample.id,
                    "k": k,
                    "prediction": predictions[r],
                    "answer_ids": answers[r],
                }
                if self.metric.corpus_level:
                    record["references"] = refs[r]
                else:
                    record["score"] = scores[r]
                if k == BASE:  # what the Samples tab and the report show beside the answers
                    record["question"] = sample.question
                    record["references"] = refs[r]
                    groups = batch.groups[r]
                    record["n_image"] = len(groups.image)
                    record["n_text"] = len(groups.prompt) - len(groups.image)
                records.append(record)
        if self.check is not None:
            records += self.check.lines(
                adapter, samples, out, self.layers, self.max_new_tokens, self.strategy
            )
        return records

    # ---- costs --------------------------------------------------------------------------------
    def measure_latency(self, sample_ids: list[str]) -> None:
        """Wall time of one truncated forward per k on one batch (best of 3 rounds, warmed up)."""
        import torch

        from cliffscope.engines.truncation import truncate

        samples = self.loadable(sample_ids)
        if not samples:
            return
        adapter = self.adapter
        batch = adapter.build_batch([s.image for s in samples], [s.prompt for s in samples])
        positions = adapter.position_ids(batch)
        keys = [s.id for s in samples]  # strategies that draw at random draw per sample
        sync = torch.cuda.synchronize if adapter.device.type == "cuda" else (lambda: None)

        def forward(k: int) -> float:
            start = time.perf_counter()
            with (
                torch.no_grad(),
                truncate(adapter, k, batch, self.mode, strategy=self.strategy, keys=keys),
            ):
                adapter.model(**batch.inputs, position_ids=positions, logits_to_keep=1)
            sync()
            return (time.perf_counter() - start) * 1e3

        forward(self.num_layers)  # warm-up
        points = sorted({*self.layers, self.num_layers})
        best = dict.fromkeys(points, float("inf"))
        for _ in range(3):  # rounds over all k, so a burst of load hits every k alike
            for k in points:
                best[k] = min(best[k], forward(k))
        adapter.reset_state()
        for k in self.layers:
            self.costs.setdefault(k, {})["latency_ms"] = round(best[k], 3)
        full = best[self.num_layers]
        self.latency = {"latency_full_ms": round(full, 3), "latency_batch_size": len(samples)}

    def theoretical_costs(self) -> None:
        from cliffscope.flops import DecoderDims, mean_savings

        dims = DecoderDims.from_config(self.adapter.text_config)
        counts = [
            (int(r["n_image"]), int(r["n_text"]))
            for r in self.records
            if r.get("k") == BASE and "n_image" in r
        ]
        for k in self.layers:
            if self.mode == "mask":  # nothing is removed: no compute or memory is saved
                flops, kv = 0.0, 0.0
            else:
                flops, kv = mean_savings(dims, counts, k, kept=self.strategy.kept)
            self.costs.setdefault(k, {}).update(
                {"flops_saved": round(flops, 6), "kv_saved": round(kv, 6)}
            )

    # ---- result -------------------------------------------------------------------------------
    def aggregate(self, complete: bool) -> dict[str, Any]:
        self.theoretical_costs()
        return aggregate(
            self.records,
            layers=self.layers,
            num_layers=self.num_layers,
            metric=self.metric.name,
            higher_is_better=self.metric.higher_is_better,
            score_set=self.corpus_score_set(),
            mode=self.mode,
            keep_ratio=self.params.keep_ratio,
            tolerance=self.params.tolerance,
            costs=self.costs,
            partner_cliffs=self.partner_cliffs(),
            complete=complete,
            extra={
                **self.latency,
                "verification": verification_summary(self.records),
                "engine": self.engine,
                "max_new_tokens": self.max_new_tokens,
                "computed_as": "drop" if self.engine == "shared" else self.mode,
            },
        )

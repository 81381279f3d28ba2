"""The sweep job: answer every sample untruncated and truncated at every swept k, then score.

Per batch of samples, one prefix-shared sweep (`engines.sweep.shared_sweep`) gives the baseline
and every k's greedy answer; one line per (sample, k) goes to samples.jsonl (`{id}@{k}`,
`{id}@base`), all lines of a sample together, so a sample is either done or redone on resume.
`result.json` is rebuilt from all lines at checkpoints and at the end, with theoretical FLOPs
and KV-cache saved per k, the latency of a truncated forward per k (timed once, on the first
batch), and the flow cliff of the newest finished analysis of the same profile and task.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from cliffscope.aggregate.sweep import BASE, aggregate
from cliffscope.errors import CliffscopeError
from cliffscope.store import RunDir, RunStore
from cliffscope.strategies.registry import from_run_params
from cliffscope.worker.batch_loop import run_in_batches
from cliffscope.worker.context import JobContext
from cliffscope.worker.engine_check import EngineCheck
from cliffscope.worker.engine_check import summary as verification_summary


def resolve_layers(spec: Any, num_layers: int, first: int = 0) -> list[int]:
    """The run's `layers` param ("all" or a list) as sorted ints within first..L (a strategy
    that ranks by layer k-1's attention starts at 1)."""
    if spec in (None, "all"):
        return list(range(first, num_layers + 1))
    layers = sorted({int(k) for k in spec})
    bad = [k for k in layers if not first <= k <= num_layers]
    if bad or not layers:
        raise CliffscopeError(
            f"layers {bad or layers} outside {first}..{num_layers} for this model",
            hint=f"the model has {num_layers} decoder layers; k = {num_layers} is the baseline"
            + (" (--keep-ratio needs k >= 1)" if first else ""),
        )
    return layers


def find_flow_cliff(run: RunDir) -> dict[str, Any] | None:
    """The cliff of the newest done analysis run with the same profile and task, if any."""
    spec = run.spec
    profile = spec.get("profile", {}).get("name")
    task = spec.get("task", {}).get("name")
    for other in RunStore(run.path.parent).list(kind="analysis", status="done"):
        other_spec = other.spec
        if other_spec.get("profile", {}).get("name") != profile:
            continue
        if other_spec.get("task", {}).get("name") != task:
            continue
        result = other.result() or {}
        cliff = result.get("cliff")
        if isinstance(cliff, dict):
            keys = ("layer", "lo", "hi", "verdict", "reason")
            return {"run": other.id, "n_samples": result.get("n_samples")} | {
                key: cliff.get(key) for key in keys
            }
    return None


class SweepJob:
    """State of one sweep run inside the worker (the model is loaded once)."""

    def __init__(self, ctx: JobContext) -> None:
        from cliffscope.metrics.registry import get_metric

        self.ctx = ctx
        params = ctx.params
        self.mode = str(params.get("mode", "drop"))
        ratio = params.get("keep_ratio")
        self.keep_ratio = None if ratio is None else float(ratio)
        self.tolerance = float(params.get("tolerance", 0.01))
        self.engine = str(params.get("engine", "shared"))
        self.checkpoint_s = float(params.get("checkpoint_s", 15.0))
        self.task = ctx.task
        self.metric = get_metric(self.task.spec.metric)
        self.max_new_tokens = ctx.max_new_tokens
        self.records: list[dict[str, Any]] = ctx.run.samples()
        self.failed = {str(r.get("id")) for r in self.records if r.get("error")}
        self.layers: list[int] = []
        self.costs: dict[int, dict[str, float | None]] = {}
        self.latency: dict[str, Any] = {}
        self.adapter: Any = None
        self.strategy = from_run_params(params)
        self.check: EngineCheck | None = None

    # ---- the loop ---------------------------------------------------------------------------
    def run(self) -> None:
        ctx = self.ctx
        self.adapter = ctx.load_adapter()
        if self.mode == "mask" and self.engine == "shared":
            ctx.log(
                "mask mode, shared engine: computed by dropping the image tokens, which gives "
                "the same answers on text positions (tested to 1e-5); --engine naive computes "
                "through masks"
            )
        self.layers = resolve_layers(
            ctx.params.get("layers"), self.num_layers, self.strategy.min_layer
        )
        self.check = EngineCheck(ctx, self.adapter.dtype, self.engine, ctx.params.get("verify"))
        if self.check.ids:
            ctx.log(
                f"{self.check.dtype}: {len(self.check.ids)} samples are re-run with the naive "
                "engine to measure how often the shared engine's answers agree (--verify)"
            )
        ids = ctx.ids
        todo = [i for i in ids if not self.sample_done(i)]
        done, total = len(ids) - len(todo), len(ids)
        ctx.progress(done, total, force=True)
        if ids:
            self.measure_latency((todo or ids)[: ctx.profile.batch_size])
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
        if record["key"] not in self.ctx.done_keys:  # a resumed sample's finished keys stay
            self.ctx.append(record)
        self.records.append(record)

    @property
    def num_layers(self) -> int:
        return int(self.adapter.num_layers)

    def keys(self, sample_id: str) -> list[str]:
        checked = self.check.keys(sample_id) if self.check is not None else []
        return [f"{sample_id}@{BASE}", *(f"{sample_id}@{k}" for k in self.layers), *checked]

    def sample_done(self, sample_id: str) -> bool:
        done = self.ctx.done_keys
        if sample_id in self.failed:
            return True
        return all(key in done for key in self.keys(sample_id))

    # ---- one batch --------------------------------------------------------------------------
    def process(self, batch_ids: list[str]) -> list[dict[str, Any]]:
        samples, failed = [], []
        for sample_id in batch_ids:
            try:
                samples.append(self.task.get(sample_id))
            except CliffscopeError as exc:
                self.ctx.log(f"{sample_id}: {exc.what}", level="warning")
                key = f"{sample_id}@{BASE}"
                failed.append({"key": key, "id": sample_id, "k": BASE, "error": exc.what})
        if not samples:
            return failed
        return self.answer(samples) + failed

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
        choices = [s.choices for s in samples] if any(s.choices for s in samples) else None
        records: list[dict[str, Any]] = []
        for k in [BASE, *self.layers]:
            answers = out.answers[BASE if k == self.num_layers else k]
            predictions = [adapter.decode(a) for a in answers]
            scores: list[float | None] = [None] * len(samples)
            if not self.metric.corpus_level:
                scores = list(self.metric.score_batch(predictions, refs, choices).per_sample)
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

        samples = []
        for sample_id in sample_ids:
            with contextlib.suppress(CliffscopeError):
                samples.append(self.task.get(sample_id))
        if not samples:
            return
        adapter = self.adapter
        batch = adapter.build_batch([s.image for s in samples], [s.prompt for s in samples])
        positions = adapter.position_ids(batch)
        sync = torch.cuda.synchronize if adapter.device.type == "cuda" else (lambda: None)

        def forward(k: int) -> float:
            start = time.perf_counter()
            with torch.no_grad(), truncate(adapter, k, batch, self.mode, strategy=self.strategy):
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
    def write_result(self, complete: bool) -> None:
        self.theoretical_costs()
        score_set = None
        if self.metric.corpus_level:
            metric = self.metric

            def score_set(preds: list[str], refs: list[list[str]]) -> tuple[list[float], float]:
                scored = metric.score_batch(preds, refs)
                return list(scored.per_sample), scored.corpus

        result = aggregate(
            self.records,
            layers=self.layers,
            num_layers=self.num_layers,
            metric=self.metric.name,
            higher_is_better=self.metric.higher_is_better,
            score_set=score_set,
            mode=self.mode,
            keep_ratio=self.keep_ratio,
            tolerance=self.tolerance,
            costs=self.costs,
            flow_cliff=find_flow_cliff(self.ctx.run),
            complete=complete,
            extra={
                **self.latency,
                "verification": verification_summary(self.records),
                "engine": self.engine,
                "max_new_tokens": self.max_new_tokens,
                "computed_as": "drop" if self.engine == "shared" else self.mode,
            },
        )
        self.ctx.write_result(result)


_JOBS: dict[int, SweepJob] = {}  # this process's finished job per context, for `finalize`


def run_sweep(ctx: JobContext) -> None:
    """Entry point for `python -m cliffscope.worker RUN_DIR` on a sweep run."""
    job = SweepJob(ctx)
    job.run()
    if ctx.world_size > 1:
        _JOBS[id(ctx)] = job


def finalize(ctx: JobContext) -> None:
    """Rank 0 of a data-parallel run, after every rank finished: result.json from all shards.

    Reuses rank 0's loaded model, swept layers and measured latency; only the records are
    re-read, now including every rank's samples file.
    """
    ran = _JOBS.pop(id(ctx), None)
    ctx.__dict__.pop("done_keys", None)  # cached before the other ranks finished
    job = SweepJob(ctx)
    if ran is not None:
        job.adapter, job.layers = ran.adapter, ran.layers
        job.costs, job.latency = ran.costs, ran.latency
    else:  # not run in this process: load the model for its dimensions
        job.adapter = ctx.load_adapter()
        job.layers = resolve_layers(
            ctx.params.get("layers"), job.num_layers, job.strategy.min_layer
        )
    job.write_result(complete=all(job.sample_done(i) for i in ctx.all_ids))

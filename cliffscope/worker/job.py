"""The shared base of every kind's job: batching, resume keys, failed samples, result.json.

A kind's job says what one batch of samples computes (`measure`), which sample lines a sample
owes (`keys`), and how its lines become result.json (`aggregate`, the kind's aggregator). The
base owns how a run walks its samples, the same for every kind: samples whose keys are all in
samples*.jsonl are skipped (the resume rule), a sample the task cannot load becomes a failed
line, the fault point and cancel check come before each batch and progress after it,
result.json is rewritten every `checkpoint_s` and once more when the loop is cancelled or
fails, and `finalize` rebuilds it from every data-parallel rank's lines.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from cliffscope.errors import CliffscopeError
from cliffscope.worker.context import JobContext


class Job:
    """One run of one kind inside the worker (the model, if any, is loaded once)."""

    adapter: Any  # the loaded model's adapter, set by jobs that load one
    max_new_tokens: int | None
    metric: Any  # the task's metric, set by jobs that score answers

    def __init__(self, ctx: JobContext) -> None:
        from cliffscope.kinds.registry import get_kind

        self.ctx = ctx
        self.kind = get_kind(ctx.spec.get("kind"))
        self.params = self.kind.Params.parse(ctx.params)
        self.checkpoint_s = float(getattr(self.params, "checkpoint_s", 10.0))
        self.task = ctx.task
        self.records: list[dict[str, Any]] = ctx.run.samples()
        self.failed = {str(r.get("id")) for r in self.records if r.get("error")}

    # ---- what a kind says -------------------------------------------------------------------
    def keys(self, sample_id: str) -> list[str]:
        """The sample lines a finished sample has (its resume keys); the first names a failure."""
        return [sample_id]

    def prepare(self, todo: list[str]) -> None:
        """Before the first batch (load the model when there is work, measure costs …)."""

    def measure(self, samples: list[Any]) -> list[dict[str, Any]]:
        """Sample lines for one batch of loaded task samples."""
        raise NotImplementedError

    def aggregate(self, complete: bool) -> dict[str, Any]:
        """result.json from `self.records` (the kind's aggregator)."""
        raise NotImplementedError

    def failed_line(self, sample_id: str, error: str) -> dict[str, Any]:
        return {"key": self.keys(sample_id)[0], "id": sample_id, "error": error}

    # ---- the loop -----------------------------------------------------------------------------
    def sample_done(self, sample_id: str) -> bool:
        if sample_id in self.failed:
            return True
        done = self.ctx.done_keys
        return all(key in done for key in self.keys(sample_id))

    def run(self) -> None:
        ctx = self.ctx
        ids = ctx.ids
        todo = [i for i in ids if not self.sample_done(i)]
        done, total = len(ids) - len(todo), len(ids)
        ctx.progress(done, total, force=True)
        self.prepare(todo)
        last_write = time.time()
        try:
            for batch_ids in ctx.batches(todo):
                ctx.fault_point("batch")
                ctx.check_cancelled()
                for record in self.process(batch_ids):
                    self.keep(record)
                done += len(batch_ids)
                ctx.progress(done, total, force=True)
                if time.time() - last_write >= self.checkpoint_s:
                    self.write_result(False)
                    last_write = time.time()
        except BaseException:  # cancelled or failed: readers still get what was finished
            with contextlib.suppress(Exception):  # never mask the error that ended the loop
                self.write_result(False)
            raise
        # one rank's share is not the run: `finalize` decides completeness over all shards
        self.write_result(done == total and ctx.world_size == 1)

    def process(self, batch_ids: list[str]) -> list[dict[str, Any]]:
        """Load the batch's samples (a sample that fails to load is a failed line), measure."""
        samples, failed = [], []
        for sample_id in batch_ids:
            try:
                samples.append(self.task.get(sample_id))
            except CliffscopeError as exc:
                self.ctx.log(f"{sample_id}: {exc.what}", level="warning")
                failed.append(self.failed_line(sample_id, exc.what))
        if not samples:
            return failed
        return self.measure(samples) + failed

    def sample_scores(self, samples: list[Any], predictions: list[str]) -> list[float | None]:
        """Each prediction's score under the task's metric, or None throughout for a
        corpus-level metric (scored over the whole set by the aggregator)."""
        if self.metric.corpus_level:
            return [None] * len(samples)
        refs = [list(s.references) for s in samples]
        choices = [s.choices for s in samples] if any(s.choices for s in samples) else None
        return list(self.metric.score_batch(predictions, refs, choices).per_sample)

    def corpus_score_set(self) -> Any:
        """For a corpus-level metric, the function the sweep-like aggregators score a set of
        answers with ((per-sample scores, corpus score)); None for a per-sample metric."""
        if not self.metric.corpus_level:
            return None
        metric = self.metric

        def score_set(preds: list[str], refs: list[list[str]]) -> tuple[list[float], float]:
            scored = metric.score_batch(preds, refs)
            return list(scored.per_sample), scored.corpus

        return score_set

    def loadable(self, sample_ids: list[str]) -> list[Any]:
        """The samples of `sample_ids` the task can load (for a side measurement such as
        latency, where a sample that fails to load is simply left out)."""
        samples = []
        for sample_id in sample_ids:
            with contextlib.suppress(CliffscopeError):
                samples.append(self.task.get(sample_id))
        return samples

    def answered_batch(self, samples: list[Any]) -> tuple[list[list[int]], list[str], Any]:
        """(answer ids, decoded answers, the batch with each answer appended): the model's own
        greedy answers under the decoding policy, ready to be teacher-forced. The policy never
        emits image placeholders, so teacher-forcing an answer cannot add a second image."""
        adapter = self.adapter
        images, prompts = [s.image for s in samples], [s.prompt for s in samples]
        answers = adapter.generate_ids(adapter.build_batch(images, prompts), self.max_new_tokens)
        predictions = [adapter.decode(a) for a in answers]
        return answers, predictions, adapter.build_batch(images, prompts, answers=answers)

    def keep(self, record: dict[str, Any]) -> None:
        if record["key"] not in self.ctx.done_keys:  # a resumed sample's finished keys stay
            self.ctx.append(record)
        self.records.append(record)

    def write_result(self, complete: bool) -> None:
        self.ctx.write_result(self.aggregate(complete))

    def finalize(self) -> None:
        """Rank 0 of a data-parallel run, after every rank finished: result.json from every
        rank's lines (what this rank loaded and measured is reused)."""
        ctx = self.ctx
        ctx.__dict__.pop("done_keys", None)  # cached before the other ranks finished
        self.records = ctx.run.samples()
        self.failed = {str(r.get("id")) for r in self.records if r.get("error")}
        self.write_result(complete=all(self.sample_done(i) for i in ctx.all_ids))

    # ---- partners -----------------------------------------------------------------------------
    def partner_cliffs(self) -> dict[str, dict[str, Any] | None]:
        """The cliff of the newest done run of each kind this kind records (same profile and
        task), as result.json carries it: `{"<method>_cliff": {run, n_samples, layer, …}}`
        (None when there is no such run yet)."""
        from cliffscope.kinds.registry import get_kind
        from cliffscope.store import RunStore

        spec = self.ctx.run.spec
        profile = spec.get("profile", {}).get("name")
        task = spec.get("task", {}).get("name")
        out: dict[str, dict[str, Any] | None] = {}
        for name in self.kind.records_partners:
            partner = get_kind(name)
            if partner.cliff_method is None:
                continue
            out[f"{partner.cliff_method.key}_cliff"] = None
            for other in RunStore(self.ctx.run.path.parent).list(kind=name, status="done"):
                other_spec = other.spec
                if other_spec.get("profile", {}).get("name") != profile:
                    continue
                if other_spec.get("task", {}).get("name") != task:
                    continue
                result = other.result() or {}
                cliff = partner.cliff(result)
                if isinstance(cliff, dict):
                    keys = ("layer", "lo", "hi", "verdict", "reason")
                    out[f"{partner.cliff_method.key}_cliff"] = {
                        "run": other.id,
                        "n_samples": result.get("n_samples"),
                    } | {key: cliff.get(key) for key in keys}
                    break
        return out

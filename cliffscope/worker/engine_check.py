"""A half-precision sweep checks its fast engine against the naive one on a few samples.

The shared engine equals the naive one token for token in float32 (tested); in bfloat16 and
float16 the two round differently and a later token can flip at a near-tie. So a shared sweep
in a half dtype re-runs `verify` samples (default `DEFAULT_SAMPLES`; 0 turns it off; chosen by
the same hash ranking as the run's subset, with their own seed) with the naive engine and writes
one `{id}@verify` line per sample: how many of its (k, answer) pairs agree, and for each
disagreement the first differing token and its margin (`engines.verify`). `result.json`'s
`verification` block, `runs show`, the run view and the report state the agreement beside the
paired intervals, so a reader can tell a real delta from numerical noise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cliffscope.tasks.sampling import select_ids

if TYPE_CHECKING:
    from cliffscope.engines.sweep import SweepOutput
    from cliffscope.strategies.base import TokenStrategy
    from cliffscope.worker.context import JobContext

DEFAULT_SAMPLES = 8
HALF_DTYPES = ("torch.bfloat16", "torch.float16")
SUFFIX = "verify"
_SEED_OFFSET = 7919  # its own ranking, not the first samples of the run's subset


def verify_key(sample_id: str) -> str:
    return f"{sample_id}@{SUFFIX}"


class EngineCheck:
    """Which samples a sweep re-checks with the naive engine, and the lines that say how."""

    def __init__(self, ctx: JobContext, dtype: Any, engine: str, requested: int | None) -> None:
        half = str(dtype) in HALF_DTYPES
        n = requested if requested is not None else (DEFAULT_SAMPLES if half else 0)
        if engine != "shared":
            n = 0
        seed = int(ctx.spec.get("subset", {}).get("seed", 0)) + _SEED_OFFSET
        self.ids = set(select_ids(ctx.all_ids, n, seed=seed)) if n else set()
        self.dtype = str(dtype).removeprefix("torch.")

    def keys(self, sample_id: str) -> list[str]:
        return [verify_key(sample_id)] if sample_id in self.ids else []

    def lines(
        self,
        adapter: Any,
        samples: list[Any],
        shared: SweepOutput,
        layers: list[int],
        max_new_tokens: int,
        strategy: TokenStrategy,
    ) -> list[dict[str, Any]]:
        """Naive re-run of the checked samples of a batch, compared with the shared answers."""
        from cliffscope.engines.sweep import SweepOutput, naive_sweep
        from cliffscope.engines.verify import compare

        rows = [r for r, s in enumerate(samples) if s.id in self.ids]
        if not rows:
            return []
        picked = [samples[r] for r in rows]
        images, prompts = [s.image for s in picked], [s.prompt for s in picked]
        keys = [s.id for s in picked]
        batch = adapter.build_batch(images, prompts)
        naive = naive_sweep(adapter, batch, layers, max_new_tokens, strategy=strategy, keys=keys)
        mine = SweepOutput(
            answers={k: [answers[r] for r in rows] for k, answers in shared.answers.items()}
        )
        lines = []
        for j, sample in enumerate(picked):
            one_naive = SweepOutput(answers={k: [a[j]] for k, a in naive.answers.items()})
            one_shared = SweepOutput(answers={k: [a[j]] for k, a in mine.answers.items()})
            agree, total, found = compare(
                adapter, [images[j]], [prompts[j]], one_shared, one_naive, strategy, [keys[j]]
            )
            lines.append(
                {
                    "key": verify_key(sample.id),
                    "id": sample.id,
                    "verify": {
                        "engine": "naive",
                        "dtype": self.dtype,
                        "agree": agree,
                        "total": total,
                        "disagreements": [d.to_json() for d in found],
                    },
                }
            )
        return lines


def summary(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """result.json's `verification` block from the `@verify` lines (None without any)."""
    checks = [(r["id"], r["verify"]) for r in records if isinstance(r.get("verify"), dict)]
    if not checks:
        return None
    agree = sum(int(v["agree"]) for _, v in checks)
    total = sum(int(v["total"]) for _, v in checks)
    disagreements = [{"id": i, **d} for i, v in checks for d in v.get("disagreements", [])]
    margins = [abs(float(d["margin"])) for d in disagreements]
    relative = [float(d.get("relative", 0.0)) for d in disagreements]
    return {
        "engine": "naive",
        "dtype": checks[0][1].get("dtype"),
        "n_samples": len(checks),
        "answers": total,
        "agreeing": agree,
        "agreement": agree / total if total else None,
        "max_abs_margin": max(margins) if margins else None,
        "max_relative_margin": max(relative) if relative else None,
        "disagreements": disagreements[:50],
    }

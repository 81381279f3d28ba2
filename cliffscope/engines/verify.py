"""Shared engine against the naive one on the same samples: agreement, and how close each
disagreement was.

In float32 the prefix-shared sweep gives the naive sweep's answers token for token (tested). In
bfloat16 / float16 the two paths round differently (the shared decoder batches every branch
and attends to a broadcast prefix), so a later token can flip where the two best candidates
are nearly tied. `compare` says, per (sample, k), whether the answers agree, and for each
disagreement the margin at the first differing token: the policy-adjusted logit of the naive
path's token minus that of the shared path's token, read from one teacher-forced forward of the
common prefix under truncation at k (the naive way), and that margin relative to the step's
largest |logit|. A small relative margin is a near-tie: numerical noise, not a difference the
truncation made.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from cliffscope.engines.sweep import BASE, SweepOutput
from cliffscope.engines.truncation import truncate

if TYPE_CHECKING:
    from PIL import Image

    from cliffscope.models.base import ModelAdapter
    from cliffscope.strategies.base import TokenStrategy


@dataclass
class Disagreement:
    """One (row, k) whose answers differ, from token `step` on."""

    row: int
    k: int | str
    step: int
    margin: float  # naive token's adjusted logit minus the shared token's, at `step`
    scale: float  # the largest |adjusted logit| at that step

    @property
    def relative(self) -> float:
        """|margin| as a fraction of the step's logit scale (a bf16 logit keeps ~3 digits)."""
        return abs(self.margin) / self.scale if self.scale else float("inf")

    def to_json(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "step": self.step,
            "margin": round(self.margin, 6),
            "relative": round(self.relative, 6),
        }


def first_difference(a: list[int], b: list[int]) -> int | None:
    """Index of the first differing token (a shorter answer ended there), None if equal."""
    if a == b:
        return None
    return next(
        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )


@torch.no_grad()
def margin_at(
    adapter: ModelAdapter,
    image: Image.Image,
    prompt: str,
    k: int,
    prefix: list[int],
    naive_next: int | None,
    shared_next: int | None,
    strategy: TokenStrategy,
    key: str | None,
) -> tuple[float, float]:
    """(adjusted-logit margin naive - shared, largest |adjusted logit|) after prompt + `prefix`,
    truncated at k. None for a "next" token means that answer ended there: its score is the
    best stop token's."""
    policy = adapter.policy
    batch = adapter.build_batch([image], [prompt], answers=[prefix])
    level = adapter.num_layers if k == BASE else int(k)
    context = batch.input_ids[0].tolist()
    prompt_batch = adapter.build_batch([image], [prompt])
    with truncate(adapter, level, prompt_batch, strategy=strategy, keys=[key] if key else None):
        logits = adapter.model(
            **batch.inputs, position_ids=adapter.position_ids(batch), logits_to_keep=1
        ).logits[:, -1]
    adapter.reset_state()
    scores = policy.adjust(logits, [context], len(prefix))[0]

    def score(token: int | None) -> float:
        if token is None:
            return float(scores[list(policy.stop_ids)].max()) if policy.stop_ids else float("-inf")
        return float(scores[token])

    finite = scores[torch.isfinite(scores)]
    return score(naive_next) - score(shared_next), float(finite.abs().max())


def compare(
    adapter: ModelAdapter,
    images: list[Image.Image],
    prompts: list[str],
    shared: SweepOutput,
    naive: SweepOutput,
    strategy: TokenStrategy,
    keys: list[str] | None = None,
) -> tuple[int, int, list[Disagreement]]:
    """(agreeing answers, compared answers, disagreements) over every row and branch."""
    agree = total = 0
    found: list[Disagreement] = []
    for k, rows in naive.answers.items():
        for row, naive_ids in enumerate(rows):
            shared_ids = shared.answers[k][row]
            total += 1
            step = first_difference(naive_ids, shared_ids)
            if step is None:
                agree += 1
                continue
            margin, scale = margin_at(
                adapter,
                images[row],
                prompts[row],
                k,
                naive_ids[:step],
                naive_ids[step] if step < len(naive_ids) else None,
                shared_ids[step] if step < len(shared_ids) else None,
                strategy,
                keys[row] if keys else None,
            )
            found.append(Disagreement(row=row, k=k, step=step, margin=margin, scale=scale))
    return agree, total, found

"""The properties every family must have under cliffscope's engines, one function each.

Each check gets a `Setup` (the family's tiny checkpoint loaded with one kernel and dtype, an
eager copy for references, two images of different shapes and two prompts of different
lengths, so batches are left-padded) and returns an `Outcome`: passed or not, what was measured.
Tolerances: float32 as the project promises (1e-5 on logits and masses, answers identical);
bfloat16 rounds differently on every path, so logits get `HALF_ATOL` and answers the near-tie
rule: every disagreement must sit where the naive path's two candidates are within `NEAR_TIE`
of the step's largest |logit| (policy-adjusted logits, `engines.verify`). bfloat16 keeps 8 bits
of mantissa, and the tiny random models' logits are flat sums of cancelling terms (largest
|logit| about 0.5), so rounding moves them by several percent; measured worst cases: 14%.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from cliffscope.conformance import references
from cliffscope.engines.cam import llava_cam
from cliffscope.engines.capture import capture_flow
from cliffscope.engines.sweep import BASE, SweepOutput, naive_sweep, shared_sweep
from cliffscope.engines.truncation import truncate
from cliffscope.engines.verify import compare
from cliffscope.strategies.drop_all import DropAll
from cliffscope.strategies.fastv import FastV

ATOL = 1e-5
HALF_ATOL = 0.05
NEAR_TIE = 0.2  # relative to the step's largest |logit|
NEW_TOKENS = 4


@dataclass
class Setup:
    adapter: Any
    eager: Any
    images: list[Any]
    prompts: list[str]
    answers: list[str]

    @property
    def half(self) -> bool:
        return self.adapter.dtype in (torch.bfloat16, torch.float16)

    @property
    def atol(self) -> float:
        return HALF_ATOL if self.half else ATOL

    def batch(self, answers: bool = False) -> Any:
        return self.adapter.build_batch(
            self.images, self.prompts, answers=self.answers if answers else None
        )


@dataclass
class Outcome:
    passed: bool
    detail: str

    @classmethod
    def close(cls, diff: float, atol: float, what: str = "max |diff|") -> Outcome:
        return cls(diff <= atol, f"{what} {diff:.2g} (tolerance {atol:g})")


def _forward_last(setup: Setup, batch: Any, k: int | None = None, **kw: Any) -> torch.Tensor:
    adapter = setup.adapter
    positions = adapter.position_ids(batch)
    with torch.no_grad():
        if k is None:
            logits = adapter.model(**batch.inputs, position_ids=positions).logits[:, -1]
        else:
            with truncate(adapter, k, batch, **kw):
                logits = adapter.model(**batch.inputs, position_ids=positions).logits[:, -1]
    adapter.reset_state()
    return logits.float()


def _answers_agree(
    setup: Setup, first: SweepOutput, second: SweepOutput, strategy: Any = None
) -> Outcome:
    """Identical answers (float32), or only near-tie disagreements (half precision)."""
    if first.answers == second.answers:
        return Outcome(True, "answers identical")
    if not setup.half:
        return Outcome(False, "answers differ")
    agree, total, found = compare(
        setup.adapter, setup.images, setup.prompts, first, second, strategy or DropAll()
    )
    worst = max(d.relative for d in found)
    return Outcome(
        worst <= NEAR_TIE,
        f"{agree}/{total} answers agree; worst margin {worst:.0%} of the logit scale "
        f"(near tie: <= {NEAR_TIE:.0%})",
    )


def check_groups(setup: Setup) -> Outcome:
    """Groups partition the prompt as the processor's ids say; grids cover image tokens only;
    captured masses sum to 1."""
    adapter = setup.adapter
    batch = setup.batch()
    for row, g in enumerate(batch.groups):
        ids = batch.input_ids[row]
        image = (ids == adapter.image_token_id).nonzero().squeeze(1).tolist()
        if list(g.image) != image:
            return Outcome(False, f"row {row}: image group is not the image-token positions")
        covered = sorted([*g.pad, *g.system, *g.image, *g.instruction, *g.output])
        if covered != list(range(g.length)):
            return Outcome(False, f"row {row}: groups do not partition the sequence")
        cells = [p for grid in adapter.image_grids(batch, row) for p in grid.positions]
        if not cells or not set(cells) <= set(image) or len(set(cells)) != len(cells):
            return Outcome(False, f"row {row}: grids do not map onto distinct image tokens")
    mass = capture_flow(adapter, setup.batch(answers=True), "answer").mass()
    diff = float(np.abs(mass.sum(-1) - 1).max())
    return Outcome.close(diff, 1e-3 if setup.half else ATOL, "max |sum of masses - 1|")


def check_k_equals_depth(setup: Setup) -> Outcome:
    """Truncating at k = L is the untouched model, bit for bit."""
    batch = setup.batch()
    plain, at_l = _forward_last(setup, batch), _forward_last(setup, batch, setup.adapter.num_layers)
    same = torch.equal(plain, at_l)
    return Outcome(
        same, "bit-identical" if same else f"differs by {(plain - at_l).abs().max():.2g}"
    )


def check_k_zero(setup: Setup) -> Outcome:
    """k = 0 equals a text-only input with the original positions."""
    batch = setup.batch()
    truncated = _forward_last(setup, batch, 0)
    text_only = references.text_only_logits(setup.adapter, batch)
    plain = _forward_last(setup, batch)
    if float((plain - truncated).abs().max()) < 1e-4:
        return Outcome(False, "k = 0 did not change the logits: the image was never removed")
    return Outcome.close(float((truncated - text_only).abs().max()), setup.atol)


def check_drop_equals_mask(setup: Setup) -> Outcome:
    """On text positions, dropping image tokens equals masking them, at every k."""
    batch = setup.batch()
    worst = 0.0
    for k in range(setup.adapter.num_layers):
        drop = _forward_last(setup, batch, k, mode="drop")
        mask = _forward_last(setup, batch, k, mode="mask")
        worst = max(worst, float((drop - mask).abs().max()))
    return Outcome.close(worst, setup.atol)


def check_shared_equals_naive(setup: Setup) -> Outcome:
    """The prefix-shared sweep gives the naive sweep's answers and first-token logits."""
    adapter, batch = setup.adapter, setup.batch()
    layers = list(range(adapter.num_layers + 1))
    outcomes = []
    for keep in (None, 0.5):
        ks = layers[1:] if keep else layers
        shared = shared_sweep(adapter, batch, ks, NEW_TOKENS, keep_ratio=keep)
        naive = naive_sweep(adapter, batch, ks, NEW_TOKENS, keep_ratio=keep)
        diff = max(
            float((shared.first_logits[k] - naive.first_logits[k]).abs().max())
            for k in naive.first_logits
        )
        strategy = FastV(keep) if keep else DropAll()
        outcomes += [
            Outcome.close(diff, setup.atol, "first-token logits"),
            _answers_agree(setup, shared, naive, strategy),
        ]
    failed = [o for o in outcomes if not o.passed]
    return Outcome(not failed, "; ".join(o.detail for o in (failed or outcomes[:2])))


def check_cached_equals_uncached(setup: Setup) -> Outcome:
    """Cached greedy generation under truncation equals uncached generation, drop and mask."""
    adapter, batch = setup.adapter, setup.batch()
    policy = adapter.policy
    config = policy.generation_config(
        adapter.model.generation_config, NEW_TOKENS, adapter.tokenizer.pad_token_id
    )
    for mode in ("drop", "mask"):
        for k in (0, adapter.num_layers - 1):
            with truncate(adapter, k, batch, mode=mode):
                cached = adapter.generate_ids(batch, NEW_TOKENS)
            with truncate(adapter, k, batch, mode=mode), torch.no_grad():
                raw = adapter.model.generate(
                    **batch.inputs, generation_config=config, use_cache=False,
                    logits_processor=policy.logits_processor(batch.seq_len),
                )  # fmt: skip
            adapter.reset_state()
            uncached = [policy.cut(row) for row in raw[:, batch.seq_len :].tolist()]
            if cached != uncached:
                first = SweepOutput(answers={k: cached})
                second = SweepOutput(answers={k: uncached})
                outcome = _answers_agree(setup, second, first)
                if not outcome.passed:
                    return Outcome(False, f"{mode} k={k}: {outcome.detail}")
    return Outcome(True, "answers identical (drop and mask, k = 0 and L - 1)")


def check_batch_equals_rows(setup: Setup) -> Outcome:
    """A left-padded batch answers like its rows one at a time (untouched and truncated)."""
    adapter, batch = setup.adapter, setup.batch()
    layers = [0, adapter.num_layers]
    together = naive_sweep(adapter, batch, layers, NEW_TOKENS)
    rows: dict[Any, list] = {k: [] for k in together.answers}
    for image, prompt in zip(setup.images, setup.prompts, strict=True):
        single = naive_sweep(adapter, adapter.build_batch([image], [prompt]), layers, NEW_TOKENS)
        for k, answers in single.answers.items():
            rows[k] += answers
    return _answers_agree(setup, together, SweepOutput(answers=rows))


def check_capture_equals_eager(setup: Setup) -> Outcome:
    """Flow capture (any kernel) equals masses read off eager attention weights."""
    batch = setup.batch(answers=True)
    worst = 0.0
    for query in ("last", "answer"):
        for heads in ("mean", "max"):
            ours = capture_flow(setup.adapter, batch, query, heads).mass()  # type: ignore[arg-type]
            ref = references.eager_masses(setup.eager, setup.eager.build_batch(
                setup.images, setup.prompts, answers=setup.answers), query, heads)  # fmt: skip
            worst = max(worst, float(np.abs(ours - ref).max()))
    return Outcome.close(worst, 1e-2 if setup.half else ATOL)


def check_keep_all(setup: Setup) -> Outcome:
    """A keep ratio of 1.0 is the untouched model (every position's logits)."""
    adapter, batch = setup.adapter, setup.batch()
    positions = adapter.position_ids(batch)
    with torch.no_grad():
        plain = adapter.model(**batch.inputs, position_ids=positions).logits.float()
        adapter.reset_state()
        worst = 0.0
        for k in range(1, adapter.num_layers):
            with truncate(adapter, k, batch, keep_ratio=1.0):
                kept = adapter.model(**batch.inputs, position_ids=positions).logits.float()
            adapter.reset_state()
            valid = batch.attention_mask.bool()
            worst = max(worst, float((kept - plain)[valid].abs().max()))
    return Outcome.close(worst, setup.atol)


def check_cam(setup: Setup) -> Outcome:
    """LLaVA-CAM equals a reference computed with autograd another way."""
    batch = setup.batch(answers=True)
    ref = references.reference_cam(setup.adapter, batch)
    if (ref > 0).sum() <= 10:
        return Outcome(False, "reference CAM is trivially zero: the comparison proves nothing")
    ours = llava_cam(setup.adapter, batch)
    return Outcome.close(float(np.abs(ours - ref).max()), 0.05 if setup.half else 2e-5)


#: check name -> function, in the order of the support matrix
CHECKS: dict[str, Callable[[Setup], Outcome]] = {
    "groups": check_groups,
    "k=L": check_k_equals_depth,
    "k=0": check_k_zero,
    "drop=mask": check_drop_equals_mask,
    "shared=naive": check_shared_equals_naive,
    "cached": check_cached_equals_uncached,
    "batch=rows": check_batch_equals_rows,
    "capture": check_capture_equals_eager,
    "keep=1": check_keep_all,
    "cam": check_cam,
}

__all__ = ["BASE", "CHECKS", "Outcome", "Setup"]

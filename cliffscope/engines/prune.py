"""The prune engine: many (strategy, budget) branches of one batch, against the untouched model.

The prune kind compares token-pruning methods (FastV, random, CLS, pooling, PyramidDrop ...) at
one truncation layer K: one `Branch` per (strategy, budget), named `"<strategy>@<budget>"`
(`"all"` has no budget; `pyramid` starts at its schedule's first layer, not at K). Layers before
the first branch layer run once per batch and every branch shares them:

- `prune_shared` runs them through the branch engine (`engines.branches`): one forward,
  every branch recomputed in one running batch, all decoded together;
- `prune_naive` runs every branch on its own (`truncate(...)` + `generate_ids`), the
  reference the shared path is tested against (answers identical, logits within 1e-5);
- `prefill_seconds` times one truncated prefill per branch and the untouched one;
- `branch_savings` gives theoretical FLOPs and KV saved from the image tokens each stage
  actually kept (exact for `pool`, whose counts depend on the grids).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import torch

from cliffscope.engines.branches import BASE, Branch, SweepOutput, naive_branches, shared_branches
from cliffscope.engines.truncation import truncate
from cliffscope.errors import CliffscopeError
from cliffscope.strategies.plan import branch_name, plan_branches

if TYPE_CHECKING:
    from cliffscope.flops import DecoderDims
    from cliffscope.models.base import ModelAdapter, PreparedBatch

__all__ = [
    "BASE",
    "Branch",
    "branch_name",
    "branch_notes",
    "branch_savings",
    "check_branches",
    "make_branches",
    "prefill_seconds",
    "prune_naive",
    "prune_shared",
]


def make_branches(
    strategies: list[str],
    budgets: list[float],
    layer: int,
    schedule: str | None = None,
    seed: int = 0,
) -> list[Branch]:
    """One branch per (strategy, budget) (`strategies.plan.plan_branches`, which names them);
    strategies without a budget (`all`) once. `pyramid` uses `schedule` (its default when
    None) with each budget as its final ratio. A pair a strategy refuses raises."""
    planned, _ = plan_branches(strategies, budgets, layer, schedule=schedule, seed=seed)
    return [Branch(p.name, p.k, p.strategy) for p in planned]


def check_branches(adapter: ModelAdapter, branches: list[Branch]) -> None:
    """Refuse, before any sample runs, branches the model cannot run: layers outside the
    decoder, a ranking layer below 1, a strategy not defined for the family (cls)."""
    from cliffscope.engines.branches import branch_layers

    for branch in branches:
        branch_layers(adapter, branch)
        if branch.strategy.needs_vision:
            adapter.vision_saliency()


def branch_notes(adapter: ModelAdapter, branches: list[Branch]) -> list[str]:
    """Run-log lines saying what each kind of branch ranks by on this model."""
    notes = []
    if any(b.strategy.needs_vision for b in branches):
        notes.append(f"cls ranks image tokens by the {adapter.vision_saliency().describe()}")
    if any(b.strategy.merges_tokens for b in branches):
        notes.append(
            "pool averages f x f blocks of each image grid into the slot of the block's "
            "top-left token; image tokens outside every grid stay as they are"
        )
    for branch in branches:
        if branch.strategy.name == "pyramid":
            notes.append(f"{branch.name}: stages {branch.strategy.describe().split(' ', 1)[1]}")
    return notes


def prune_shared(
    adapter: ModelAdapter,
    batch: PreparedBatch,
    branches: list[Branch],
    max_new_tokens: int = 1,
    keys: list[str] | None = None,
) -> SweepOutput:
    """Answers and first-token logits of every branch and the baseline, prefix shared."""
    return shared_branches(adapter, batch, branches, max_new_tokens, keys=keys)


def prune_naive(
    adapter: ModelAdapter,
    batch: PreparedBatch,
    branches: list[Branch],
    max_new_tokens: int = 1,
    keys: list[str] | None = None,
) -> SweepOutput:
    """The reference: every branch (and the baseline) run on its own."""
    return naive_branches(adapter, batch, branches, max_new_tokens, keys=keys)


@torch.no_grad()
def prefill_seconds(
    adapter: ModelAdapter,
    batch: PreparedBatch,
    branches: list[Branch],
    repeats: int = 3,
    keys: list[str] | None = None,
) -> dict[int | str, float]:
    """Best wall time of one prefill (first token's logits) per branch and for the untouched
    model ("base"), timed round-robin so a change in the machine's load hits all alike."""
    positions = adapter.position_ids(batch)
    cuda = adapter.device.type == "cuda"

    def run(branch: Branch | None) -> float:
        if cuda:
            torch.cuda.synchronize(adapter.device)
        start = time.perf_counter()
        if branch is None:
            adapter.model(**batch.inputs, position_ids=positions, logits_to_keep=1)
        else:
            with truncate(adapter, branch.k, batch, strategy=branch.strategy, keys=keys):
                adapter.model(**batch.inputs, position_ids=positions, logits_to_keep=1)
        if cuda:
            torch.cuda.synchronize(adapter.device)
        adapter.reset_state()
        return time.perf_counter() - start

    best: dict[int | str, float] = {}
    for _ in range(max(1, repeats)):
        for branch in [None, *branches]:
            name = BASE if branch is None else branch.name
            best[name] = min(best.get(name, float("inf")), run(branch))
    return best


def branch_savings(
    dims: DecoderDims, branch: Branch, n_image: int, n_text: int, kept: list[int] | None = None
) -> tuple[float, float]:
    """(FLOPs saved, KV saved) of one prompt's decoder prefill: from `kept` (image tokens
    present after each stage, `SweepOutput.kept[name][row]`) when given, else the strategy's
    nominal counts."""
    from cliffscope.flops import staged_savings

    if kept is None:
        return branch.strategy.savings(dims, n_image, n_text, branch.k)
    layers = branch.strategy.stage_layers(branch.k)
    if len(layers) != len(kept):
        raise CliffscopeError(f"{branch.name}: {len(kept)} kept counts for {len(layers)} stages")
    return staged_savings(dims, n_image, n_text, list(zip(layers, kept, strict=True)))

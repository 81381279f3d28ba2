"""A truncation sweep over many k for one batch: prefix-shared (fast) or one run per k (naive).

A sweep is one token strategy started at every swept layer k: one `Branch` per k, run by the
branch engine (`engines.branches`). `shared_sweep` runs the model once and recomputes only
layers k..L-1 of every branch, batched across k (at layer j every branch with k <= j runs as
one batch), then decodes all branches together; `naive_sweep` runs each k on its own inside
`truncate(...)`. Tests hold the two to the same answers and first-token logits within 1e-5.
`mask` mode gives the same text outputs as `drop` (tested), so the shared path computes it by
dropping (result.json and the run log say so).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from cliffscope.engines.branches import (  # noqa: F401 - BASE and SweepOutput are the sweep's API
    BASE,
    Branch,
    SweepOutput,
    naive_branches,
    shared_branches,
)
from cliffscope.engines.truncation import Mode, resolve_strategy

if TYPE_CHECKING:
    from cliffscope.models.base import ModelAdapter, PreparedBatch
    from cliffscope.strategies.base import TokenStrategy


def _branches(adapter: ModelAdapter, layers: list[int], strategy: TokenStrategy) -> list[Branch]:
    """One branch per swept layer below L (k = L is the baseline itself), ascending."""
    n_layers = adapter.num_layers
    ks = sorted({int(k) for k in layers if int(k) < n_layers})
    for k in ks:
        strategy.check_layer(k)
    return [Branch(k, k, strategy) for k in ks]


@torch.no_grad()
def shared_sweep(
    adapter: ModelAdapter,
    batch: PreparedBatch,
    layers: list[int],
    max_new_tokens: int = 1,
    keep_ratio: float | None = None,
    strategy: TokenStrategy | None = None,
    keys: list[str] | None = None,
) -> SweepOutput:
    """Greedy answers for the baseline and every k in `layers`, sharing the common prefix."""
    strategy = resolve_strategy(strategy, keep_ratio)
    branches = _branches(adapter, layers, strategy)
    return shared_branches(adapter, batch, branches, max_new_tokens, keys=keys)


@torch.no_grad()
def naive_sweep(
    adapter: ModelAdapter,
    batch: PreparedBatch,
    layers: list[int],
    max_new_tokens: int = 1,
    mode: Mode = "drop",
    keep_ratio: float | None = None,
    strategy: TokenStrategy | None = None,
    keys: list[str] | None = None,
) -> SweepOutput:
    """The reference: the baseline and each k run on their own (forward, then `generate`)."""
    strategy = resolve_strategy(strategy, keep_ratio)
    branches = _branches(adapter, layers, strategy)
    return naive_branches(adapter, batch, branches, max_new_tokens, mode=mode, keys=keys)

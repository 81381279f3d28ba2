"""`random`: keep a uniformly random budget x n of the image tokens (the honest baseline).

The draw is per sample: each row's generator is seeded from (seed, sample key) through a stable
hash (SHA-256, not Python's salted `hash`), so the same sample keeps the same tokens whatever
batch it lands in, on every run and after a resume. Engines pass the sample ids as `keys`;
without them the draw could only depend on the batch layout, so it is refused.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from cliffscope.errors import CliffscopeError
from cliffscope.strategies.base import BUDGET, Param, SelectionInputs
from cliffscope.strategies.ranked import BudgetStrategy

if TYPE_CHECKING:
    import torch


def sample_seed(seed: int, key: str) -> int:
    """A 63-bit generator seed from (run seed, sample key), the same on every machine."""
    digest = hashlib.sha256(f"{int(seed)}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


class RandomKeep(BudgetStrategy):
    name = "random"
    summary = "a random budget x n of the image tokens, drawn per sample from (seed, sample id)"
    parameters = (BUDGET, Param("seed", int, "seed of the per-sample draw", default=0))

    def __init__(self, budget: float, seed: int = 0) -> None:
        super().__init__(budget)
        self.seed = int(seed)

    def select(self, inputs: SelectionInputs) -> torch.Tensor:
        import torch

        if inputs.keys is None or len(inputs.keys) != inputs.image.shape[0]:
            raise CliffscopeError(
                "the random strategy draws per sample and needs each row's sample id",
                hint="pass keys=[sample ids] to the engine",
            )
        selected = torch.zeros_like(inputs.image)
        for row, key in enumerate(inputs.keys):
            positions = inputs.image[row].nonzero().squeeze(1)
            generator = torch.Generator().manual_seed(sample_seed(self.seed, str(key)))
            order = torch.randperm(positions.numel(), generator=generator)
            chosen = order[: self.kept(positions.numel())].to(positions.device)
            selected[row, positions[chosen]] = True
        return selected

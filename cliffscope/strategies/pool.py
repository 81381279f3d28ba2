"""`pool`: average blocks of the image grid into one new token each (spatial pooling).

Budget 1/n pools blocks of n tokens, as square as n allows (r rows x c columns, r the largest
divisor of n not above its square root): 0.25 is 2 x 2, 0.111 (1/9) is 3 x 3, 0.0625 is 4 x 4,
0.5 is 1 x 2 (horizontal pairs), 0.125 is 2 x 4, and 1.0 keeps every token as it is; a budget
that is not 1/n for a whole n is refused. Blocks tile each of the adapter's image grids
(`image_grids`) from its top-left corner; at a grid's right and bottom edge a block is cut
(1 x 2, 2 x 1, 1 x 1 ...) and averages what it covers.

The pooled token is the plain mean of its block's hidden states entering layer k. It takes the
sequence slot of the block's TOP-LEFT token: that token's rotary position, position ids and
original index (masks, sliding windows and both-ways image blocks are counted from it), so
pooled tokens stay in causal order. Image tokens outside every grid (LLaVA-NeXT's row newlines,
a CLS token kept as an image token) stay as they are. A family whose adapter gives a row no
grid is refused. Qwen3-VL's deepstack features follow the same rule: a pooled token gets the
mean of its block's features.

`kept(n)` is exact for one square grid (ceil(side / r) * ceil(side / c)); other layouts are
counted by the engines per sample.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from cliffscope.errors import CliffscopeError
from cliffscope.strategies.base import BUDGET, Merges, SelectionInputs, TokenStrategy, check_budget

if TYPE_CHECKING:
    import torch

    from cliffscope.models.batch import ImageGrid

#: how far a budget may sit from 1/n (0.111 for 1/9)
TOLERANCE = 0.02


def pool_block(budget: float) -> tuple[int, int]:
    """The block shape (rows, cols) of a pool budget 1/n, as square as n allows, or a clear
    error: 0.25 -> (2, 2), 0.5 -> (1, 2), 0.125 -> (2, 4)."""
    if budget <= 0 or budget > 1:
        raise CliffscopeError("pool: budget must be in (0, 1] (1/n for a block of n tokens)")
    n = max(1, round(1 / budget))
    if abs(1 / n - budget) > TOLERANCE * budget:
        raise CliffscopeError(
            f"pool: budget {budget:g} is not 1/n for a whole block of n tokens",
            hint="use 1 (no pooling), 0.5 (1x2), 0.25 (2x2), 0.111 (3x3), 0.0625 (4x4) ...",
        )
    rows = max(d for d in range(1, math.isqrt(n) + 1) if n % d == 0)
    return rows, n // rows


def grid_blocks(grid: ImageGrid, block: int | tuple[int, int]) -> list[list[int]]:
    """The grid's blocks of `block` rows x cols (an int: square; edge blocks cut), each as its
    positions, top-left first."""
    height, width = (block, block) if isinstance(block, int) else block
    blocks = []
    for r0 in range(0, grid.rows, height):
        for c0 in range(0, grid.cols, width):
            blocks.append(
                [
                    grid.positions[r * grid.cols + c]
                    for r in range(r0, min(r0 + height, grid.rows))
                    for c in range(c0, min(c0 + width, grid.cols))
                ]
            )
    return blocks


class SpatialPool(TokenStrategy):
    name = "pool"
    summary = "mean of blocks of the image grid (budget 1/n: 0.5 = 1x2, 0.25 = 2x2, 0.111 = 3x3)"
    parameters = (BUDGET,)
    needs_grids = True
    merges_tokens = True

    def __init__(self, budget: float) -> None:
        self.budget = check_budget(self.name, budget)
        self.block = pool_block(self.budget)

    def kept(self, n_image: int) -> int:
        side = math.isqrt(n_image)
        rows, cols = self.block
        if side * side == n_image:
            return math.ceil(side / rows) * math.ceil(side / cols)
        return math.ceil(n_image / (rows * cols))

    def _blocks(self, inputs: SelectionInputs, row: int) -> list[list[int]]:
        grids = inputs.grids[row] if inputs.grids is not None else []
        if not grids and bool(inputs.image[row].any()):
            raise CliffscopeError(
                "pool: the model's adapter gives no image grid for this prompt, so there are "
                "no blocks to average",
                hint="pool works on families with image grids (see docs/models.md)",
            )
        return [block for grid in grids for block in grid_blocks(grid, self.block)]

    def select(self, inputs: SelectionInputs) -> torch.Tensor:
        selected = inputs.image.clone()  # tokens outside every grid stay
        if self.block == (1, 1):
            return selected
        for row in range(selected.shape[0]):
            for block in self._blocks(inputs, row):
                selected[row, block[1:]] = False
        return selected

    def merges(self, inputs: SelectionInputs, selected: torch.Tensor) -> Merges | None:
        if self.block == (1, 1):
            return None
        return [
            {block[0]: block for block in self._blocks(inputs, row) if len(block) > 1}
            for row in range(selected.shape[0])
        ]

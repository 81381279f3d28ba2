"""The data an adapter hands the engines: token groups, image grids, a prepared batch.

Kept apart from the adapter class and free of torch at import.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cliffscope.vocab import GROUPS as GROUP_NAMES  # the one declaration of the groups

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class TokenGroups:
    """Where each token group of one row lies in the (left-padded) batch sequence.

    `system`, `output` and `pad` are contiguous `range`s; `image` and `instruction` are sorted
    position sequences, because separators inside an image run (tile markers, `[IMG_BREAK]`,
    `<row_1_col_2>` ...) have other ids: they are text, and they belong to the instruction,
    like every prompt position after the first image token that is not an image token. All
    positions are in the padded row, so `length` is the same for every row of a batch. `pad`
    is the left padding (`range(0, n_pad)`); `output` is empty unless answers were
    teacher-forced, and always starts where the prompt ends.
    """

    system: range
    image: Sequence[int]
    instruction: Sequence[int]
    output: range
    pad: range
    length: int

    def spans(self) -> dict[str, Sequence[int]]:
        """The four groups by name (`GROUP_NAMES`)."""
        return {name: getattr(self, name) for name in GROUP_NAMES}

    def counts(self) -> dict[str, int]:
        """Number of tokens per group (the `n_tokens` of a sample line)."""
        return {name: len(span) for name, span in self.spans().items()}

    @property
    def prompt(self) -> range:
        """All non-pad prompt positions (system + image + instruction)."""
        return range(self.system.start, self.output.start)

    @property
    def last_prompt_position(self) -> int:
        """The position whose logits predict the first answer token."""
        return self.output.start - 1

    @property
    def image_runs(self) -> list[range]:
        """The image positions as maximal contiguous runs (one unless separators interrupt)."""
        return position_runs(self.image)

    def group_of(self, position: int) -> str:
        """Group name of a position ("pad" for padding)."""
        if not 0 <= position < self.length:
            raise IndexError(f"position {position} outside a sequence of length {self.length}")
        for name, span in (("pad", self.pad), ("system", self.system), ("output", self.output)):
            if position in span:
                return name
        return "image" if position in set(self.image) else "instruction"


def position_runs(positions: Sequence[int]) -> list[range]:
    """Sorted positions as maximal runs of consecutive positions."""
    runs: list[range] = []
    for p in positions:
        if runs and runs[-1].stop == p:
            runs[-1] = range(runs[-1].start, p + 1)
        else:
            runs.append(range(p, p + 1))
    return runs


@dataclass(frozen=True)
class ImageGrid:
    """Image-token positions laid out on a 2-D grid, and the image area they cover.

    `positions` are sequence positions in row-major order (`rows * cols` of them), so
    `values[positions].reshape(rows, cols)` is the map. `box` is (x0, y0, x1, y1) in the pixels
    of the ORIGINAL image (before the processor resized it), so a map can be drawn over it.
    """

    positions: list[int]
    rows: int
    cols: int
    box: tuple[float, float, float, float]
    label: str

    def __post_init__(self) -> None:
        if len(self.positions) != self.rows * self.cols:
            raise ValueError(
                f"grid {self.label!r}: {len(self.positions)} positions for {self.rows}x{self.cols}"
            )

    def to_json(self) -> dict[str, Any]:
        """The `grids` entry of a `maps/<id>.json` file."""
        return {"label": self.label, "rows": self.rows, "cols": self.cols, "box": list(self.box)}


@dataclass
class PreparedBatch:
    """Model inputs for a batch plus everything needed to read the outputs back.

    - `inputs`: the dict for `model(**inputs)` (input_ids, attention_mask, pixel_values and the
      family's extras such as `image_sizes` or `image_grid_thw`), already on `input_device()`.
    - `groups`: one `TokenGroups` per row.
    - `prompt_lengths`: non-pad prompt tokens per row (system + image + instruction).
    - `answer_ids`: the teacher-forced answer token ids per row, or None.
    - `image_sizes`: (width, height) of each row's ORIGINAL image, like `PIL.Image.size`.
    - `texts`: the rendered chat-template prompt per row (before image-token expansion).
    """

    inputs: dict[str, Any]
    groups: list[TokenGroups]
    prompt_lengths: list[int]
    answer_ids: list[list[int]] | None
    image_sizes: list[tuple[int, int]]
    texts: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.groups)

    @property
    def input_ids(self) -> torch.Tensor:
        return self.inputs["input_ids"]

    @property
    def attention_mask(self) -> torch.Tensor:
        return self.inputs["attention_mask"]

    @property
    def seq_len(self) -> int:
        return int(self.inputs["input_ids"].shape[1])

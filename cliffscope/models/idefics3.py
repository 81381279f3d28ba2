"""Idefics3 and SmolVLM: tiles with markers inside the image span, then a global view.

The processor scales the image (longest edge), pads it to whole tiles and cuts it into
rows x cols tiles; each tile and the global (whole-image) view become `image_seq_len` tokens
(a square grid after the pixel shuffle, row-major). Inside the span the runs are separated by
text: `<fake_token_around_image><row_r_col_c>` before each tile, a newline after each row of
tiles, `<fake_token_around_image><global-img>` before the global view. The grid layout is read
off those markers, so it is exactly what the processor did. Tile (r, c) covers the matching
slice of the original image.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

from cliffscope.errors import CliffscopeError
from cliffscope.models.base import ImageGrid, ModelAdapter, PreparedBatch
from cliffscope.models.geometry import full_box

if TYPE_CHECKING:
    from PIL import Image

_TILE = re.compile(r"<row_(\d+)_col_(\d+)>")


class Idefics3Adapter(ModelAdapter):
    family = "idefics3"
    model_types = ("idefics3",)
    description = "Idefics3 (tiles + global view, <row_r_col_c> markers inside the image span)"

    @classmethod
    def model_class(cls) -> Any:
        from transformers import Idefics3ForConditionalGeneration

        return Idefics3ForConditionalGeneration

    def processor_images(self, images: list[Image.Image]) -> list[Any]:
        return [[image] for image in images]

    def vision_token_ids(self) -> list[int]:
        """Also the tile markers `<row_r_col_c>` and `<global-img>`."""
        tokenizer = self.tokenizer
        markers = [i for token, i in tokenizer.get_vocab().items() if _TILE.fullmatch(token)]
        global_tag = getattr(self.processor, "global_image_tag", None)
        if global_tag:
            markers.append(tokenizer.convert_tokens_to_ids(global_tag))
        return sorted({*super().vision_token_ids(), *markers})

    def _run_labels(self, batch: PreparedBatch, row: int) -> list[tuple[int, int] | None]:
        """Per image run, the (r, c) of its tile marker, or None for the global view."""
        ids = batch.input_ids[row].tolist()
        labels: list[tuple[int, int] | None] = []
        for run in batch.groups[row].image_runs:
            before = self.tokenizer.convert_ids_to_tokens(ids[max(run.start - 2, 0) : run.start])
            found = [m for m in (_TILE.fullmatch(t) for t in before) if m]
            labels.append((int(found[-1][1]), int(found[-1][2])) if found else None)
        return labels

    def image_grids(self, batch: PreparedBatch, row: int) -> list[ImageGrid]:
        runs = batch.groups[row].image_runs
        labels = self._run_labels(batch, row)
        tiles = [label for label in labels if label is not None]
        n_rows = max((r for r, _ in tiles), default=1)
        n_cols = max((c for _, c in tiles), default=1)
        width, height = batch.image_sizes[row]
        grids = []
        for run, label in zip(runs, labels, strict=True):
            side = math.isqrt(len(run))
            if side * side != len(run):
                raise CliffscopeError(f"{self.family} image run of {len(run)} tokens is not square")
            if label is None:
                box, name = full_box(width, height), "global"
            else:
                r, c = label[0] - 1, label[1] - 1
                box = (c * width / n_cols, r * height / n_rows, (c + 1) * width / n_cols,
                       (r + 1) * height / n_rows)  # fmt: skip
                name = f"tile {r},{c}"
            grids.append(ImageGrid(positions=list(run), rows=side, cols=side, box=box, label=name))
        return grids


class SmolVLMAdapter(Idefics3Adapter):
    family = "smolvlm"
    model_types = ("smolvlm",)
    description = "SmolVLM (the Idefics3 layout; its processor needs num2words)"

    @classmethod
    def model_class(cls) -> Any:
        from transformers import SmolVLMForConditionalGeneration

        return SmolVLMForConditionalGeneration

"""A loaded model described in plain numbers: what `cliffscope models check` prints.

Kept apart from the CLI so the dashboard or a worker can show the same facts; the result is a
plain dataclass (no tensors), ready for JSON.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL import Image

    from cliffscope.models.base import ModelAdapter

#: runs of identical tokens at least this long are shown as "tok×n"
RUN_MIN = 4


@dataclass
class TokenPiece:
    """One cell of the token strip: a token (or a run of identical ones) and its group."""

    text: str
    group: str
    count: int = 1


@dataclass
class ModelSummary:
    family: str
    model_class: str
    source: str
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    hidden_size: int
    vocab_size: int
    dtype: str
    device: str
    attn_implementation: str
    vision_attn_implementation: str | None  # None: no separate vision config
    parameters: int
    weights_bytes: int
    kv_bytes_per_1k_tokens: int
    image_size: tuple[int, int]
    image_tokens: int
    groups: dict[str, list[list[int]]]  # name -> [[start, stop), ...] runs of positions
    grids: list[dict[str, Any]]
    strip: list[TokenPiece] = field(default_factory=list)
    prompt: str = ""
    answer: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def vision_attention(config: Any) -> str | None:
    """The kernel the loaded vision tower runs: its sub-config's, the first that is not text."""
    from cliffscope.models import compat

    text = config.get_text_config()
    for key in getattr(config, "sub_configs", {}):
        sub = getattr(config, key, None)
        if sub is not None and sub is not text:
            return compat.attention_implementation(sub)
    return None


def token_strip(adapter: ModelAdapter, ids: list[int], groups: Any) -> list[TokenPiece]:
    """Tokens of one row (padding skipped) with their group, long identical runs compressed."""
    tokens = adapter.tokenizer.convert_ids_to_tokens(ids)
    pieces: list[TokenPiece] = []
    for pos in range(len(groups.pad), groups.length):
        text = (
            str(tokens[pos])
            .replace("\n", "⏎")
            .replace("Ċ", "⏎")
            .replace("▁", " ")
            .replace("Ġ", " ")
        )
        group = groups.group_of(pos)
        last = pieces[-1] if pieces else None
        if last is not None and last.text == text and last.group == group:
            last.count += 1
        else:
            pieces.append(TokenPiece(text=text, group=group))
    out: list[TokenPiece] = []
    for piece in pieces:  # short runs are shown token by token
        if piece.count < RUN_MIN:
            out.extend(TokenPiece(piece.text, piece.group) for _ in range(piece.count))
        else:
            out.append(piece)
    return out


def memory(adapter: ModelAdapter) -> tuple[int, int, int]:
    """(parameters, weight bytes, KV-cache bytes per 1,000 tokens of one sequence)."""
    params = 0
    weight_bytes = 0
    for p in adapter.model.parameters():
        params += p.numel()
        weight_bytes += p.numel() * p.element_size()
    elem = adapter.dtype.itemsize
    kv = 2 * adapter.num_layers * adapter.num_kv_heads * adapter.head_dim * elem * 1000
    return params, weight_bytes, kv


def summarize(
    adapter: ModelAdapter, image: Image.Image, prompt: str, generate: bool = True
) -> ModelSummary:
    """Load-free description of `adapter` plus the groups of one (image, prompt) sample.

    With `generate`, the greedy answer is teacher-forced back so the strip shows `output` too.
    """
    batch = adapter.build_batch([image], [prompt])
    answer = None
    if generate:
        ids = adapter.generate_ids(batch, adapter.profile.max_new_tokens)[0]
        answer = adapter.decode(ids)
        if ids:
            batch = adapter.build_batch([image], [prompt], answers=[ids])
    from cliffscope.models.base import position_runs

    g = batch.groups[0]
    spans = g.spans().items()
    params, weight_bytes, kv = memory(adapter)
    return ModelSummary(
        family=adapter.family,
        model_class=type(adapter.model).__name__,
        source=adapter.profile.model,
        num_layers=adapter.num_layers,
        num_heads=adapter.num_heads,
        num_kv_heads=adapter.num_kv_heads,
        head_dim=adapter.head_dim,
        hidden_size=adapter.hidden_size,
        vocab_size=int(adapter.text_config.vocab_size),
        dtype=str(adapter.dtype).removeprefix("torch."),
        device=str(adapter.device),
        attn_implementation=adapter.text_attention(),
        vision_attn_implementation=vision_attention(adapter.model.config),
        parameters=params,
        weights_bytes=weight_bytes,
        kv_bytes_per_1k_tokens=kv,
        image_size=tuple(image.size),
        image_tokens=len(g.image),
        groups={name: [[r.start, r.stop] for r in position_runs(span)] for name, span in spans},
        grids=[grid.to_json() for grid in adapter.image_grids(batch, 0)],
        strip=token_strip(adapter, batch.input_ids[0].tolist(), g),
        prompt=prompt,
        answer=answer,
    )


def sample_image(width: int = 640, height: int = 480) -> Image.Image:
    """A synthetic photo-sized image (COCO's usual 640x480): a red disc on a blue gradient."""
    import numpy as np
    from PIL import Image, ImageDraw

    x = np.linspace(0, 255, width, dtype=np.float32)
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    arr = np.stack([np.broadcast_to(x * 0.3, (height, width)), y * np.ones_like(x) * 0.5,
                    np.full((height, width), 200.0)], axis=-1).astype(np.uint8)  # fmt: skip
    image = Image.fromarray(arr, "RGB")
    r = min(width, height) // 4
    ImageDraw.Draw(image).ellipse(
        (width // 2 - r, height // 2 - r, width // 2 + r, height // 2 + r), fill=(220, 30, 30)
    )
    return image

"""The vision tower's own saliency of each image token, for the `cls` strategy.

FasterVLM and VisionZip rank image tokens by the vision encoder's attention, before the language
model. The adapter says where to read it (`ModelAdapter.vision_saliency`): which attention
module (the tower layer whose output the family feeds the projector), how (`kind`) and how
patches map onto image tokens:

- `cls`: the [CLS] query's attention to every key (CLIP towers: LLaVA-1.5);
- `received`: the mean attention each patch receives over all queries of its image (towers
  without a CLS token: Qwen2-VL's), as VisionZip does for SigLIP.

Both are head means of the softmax the tower itself computes, read from the post-RoPE query
and key its kernel receives: while `recording` is active the tower runs cliffscope's vision
wrapper around its own kernel (`models.kernel.vision_kernel_name`), which changes no output.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import torch

from cliffscope.errors import CliffscopeError
from cliffscope.models import compat, kernel

if TYPE_CHECKING:
    from cliffscope.models.base import ModelAdapter, PreparedBatch

Kind = Literal["cls", "received"]
#: queries per block when averaging received attention (bounds the (q, k) scores in memory)
QUERY_BLOCK = 1024


@dataclass
class VisionSaliency:
    """Where and how an adapter's tower is read; `to_tokens(batch, per_image)` maps one score
    vector per image (in the tower's key order) to (B, S) scores at image positions."""

    module: torch.nn.Module
    kind: Kind
    layer: int
    to_tokens: Callable[[PreparedBatch, list[torch.Tensor]], torch.Tensor]

    def describe(self) -> str:
        if self.kind == "cls":
            return f"[CLS] attention of vision layer {self.layer}"
        return (
            f"mean attention each patch receives in vision layer {self.layer} "
            "(the tower has no [CLS] token)"
        )


def attention_scores(
    query: torch.Tensor, key: torch.Tensor, mask: Any, kwargs: dict, kind: Kind
) -> torch.Tensor:
    """(B, K) head-mean attention: of query 0 (`cls`) or received, averaged over queries."""
    scaling = kwargs.get("scaling")
    if scaling is None:
        scaling = query.shape[-1] ** -0.5
    heads = query.shape[1]
    k = key.float().repeat_interleave(heads // key.shape[1], dim=1)
    rows = query[:, :, :1] if kind == "cls" else query
    total = torch.zeros(query.shape[0], key.shape[2], device=query.device)
    for start in range(0, rows.shape[2], QUERY_BLOCK):
        q = rows[:, :, start : start + QUERY_BLOCK].float()
        scores = (q @ k.transpose(-1, -2)) * scaling
        if isinstance(mask, torch.Tensor):
            part = mask[..., start : start + q.shape[2], :]
            scores = (
                scores.masked_fill(~part, float("-inf"))
                if part.dtype == torch.bool
                else scores + part
            )
        total += scores.softmax(dim=-1).sum(dim=2).mean(dim=1)
    return total / rows.shape[2]


@dataclass
class _Tap:
    spec: VisionSaliency
    n_images: int
    images: list[torch.Tensor] = field(default_factory=list)

    def __call__(self, module: Any, query: Any, key: Any, mask: Any, kwargs: dict) -> None:
        if module is not self.spec.module or len(self.images) >= self.n_images:
            return None
        scores = attention_scores(query, key, mask, kwargs, self.spec.kind)
        self.images.extend(scores.unbind(0))  # one call per image (Qwen) or one for all (CLIP)
        return None


class recording:  # noqa: N801 - used as a context manager, like contextlib's
    """Inside: the tower's attention at the adapter's saliency layer is recorded; afterwards
    (or once the tower ran) `scores()` gives (B, S) saliency at image positions."""

    def __init__(self, adapter: ModelAdapter, batch: PreparedBatch) -> None:
        self.adapter, self.batch = adapter, batch
        self.spec = adapter.vision_saliency()
        self.key, self.config = _config_key(adapter, self.spec.module)
        self.tap = _Tap(self.spec, n_images=len(batch))
        self._base: str | None = None
        self._taps: Any = None

    def __enter__(self) -> recording:
        base = compat.attention_implementation(self.config)
        if base.startswith(kernel.VISION_PREFIX):
            raise CliffscopeError("the vision tower's attention is already being recorded")
        if base.startswith("flash"):
            raise CliffscopeError(
                "the cls strategy reads the vision tower's attention, which flash kernels "
                "do not compute per image",
                hint='set vision_attn_implementation = "sdpa" in the profile',
            )
        self._base = base
        self.adapter.model.set_attn_implementation({self.key: kernel.vision_kernel_name(base)})
        self._taps = kernel.vision_tapping(self.tap)
        self._taps.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._taps.__exit__(*exc)
        self.adapter.model.set_attn_implementation({self.key: self._base})

    def scores(self) -> torch.Tensor:
        if len(self.tap.images) < len(self.batch):
            raise CliffscopeError(
                f"the vision tower's layer {self.spec.layer} ran for {len(self.tap.images)} "
                f"of {len(self.batch)} images before the tokens were ranked"
            )
        return self.spec.to_tokens(self.batch, self.tap.images[: len(self.batch)])


def _config_key(adapter: ModelAdapter, module: torch.nn.Module) -> tuple[str, Any]:
    """The sub-config name (for `set_attn_implementation`'s dict form) the module runs under."""
    config = adapter.model.config
    for key in getattr(config, "sub_configs", {}):
        if getattr(config, key, None) is module.config:
            return key, module.config
    raise CliffscopeError(f"cannot find the sub-config of {type(module).__name__}")


def place(batch: PreparedBatch, per_row: list[torch.Tensor], what: str) -> torch.Tensor:
    """(B, S) float: row r's token scores written at its image positions, in order."""
    out = torch.zeros(batch.input_ids.shape, dtype=torch.float32, device=batch.input_ids.device)
    for row, (groups, scores) in enumerate(zip(batch.groups, per_row, strict=True)):
        if scores.numel() != len(groups.image):
            raise CliffscopeError(
                f"{what}: {scores.numel()} vision scores for {len(groups.image)} image tokens"
            )
        out[row, list(groups.image)] = scores.to(out.device)
    return out

"""LLaVA-CAM: Grad-CAM over the image tokens of every decoder layer.

For layer l let h_l be the hidden states ENTERING layer l (the residual stream that layer's
attention reads; for l = 0 the merged input embeddings) at the row's image positions, and y
the summed logits of the teacher-forced answer tokens, each
read at the position that predicts it (a row with an empty answer uses the top logit at the
last prompt position, i.e. the token it did produce). Then, per layer:

    w_c   = mean over image positions i of max(dy/dh_l[i, c], 0)   (mean positive gradient)
    cam_i = ReLU(sum_c w_c * h_l[i, c]),   normalised to [0, 1] by its maximum over the image

Inputs rather than outputs: the last layer's output at image positions only feeds the logits
of image positions, so its gradient, and its map, would always be zero.

Parameters stay frozen (`requires_grad` off: no parameter gradient is ever allocated); the
only leaf that needs a gradient is the hidden state entering the first decoder layer, so one
backward pass gives dy/dh_l for every layer at once. Rows of a batch do not interact, so one
backward of the summed targets serves the whole batch. Logits are computed only at the
positions that predict answer tokens (`logits_to_keep`), not over the whole vocabulary x
sequence.

SmoothGrad (`smooth_n` > 0): the raw ReLU maps are averaged over `smooth_n` copies of the
pixel inputs with Gaussian noise of std `smooth_sigma` x (max - min of the pixel tensor),
as in Smilkov et al.'s noise level, then normalised.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from cliffscope.models import compat
from cliffscope.models.base import PreparedBatch

if TYPE_CHECKING:
    from cliffscope.models.base import ModelAdapter


@contextlib.contextmanager
def frozen(model: torch.nn.Module) -> Iterator[None]:
    """Parameters without gradients for the duration; restores each flag afterwards."""
    saved = [(p, p.requires_grad) for p in model.parameters()]
    try:
        for p, _ in saved:
            p.requires_grad_(False)
        yield
    finally:
        for p, flag in saved:
            p.requires_grad_(flag)


@contextlib.contextmanager
def layer_inputs(layers: Sequence[torch.nn.Module]) -> Iterator[list[torch.Tensor | None]]:
    """Record the hidden states entering each decoder layer; the first becomes a grad leaf."""
    seen: list[torch.Tensor | None] = [None] * len(layers)

    def recorder(index: int) -> Any:
        def hook(_module: Any, args: tuple, kwargs: dict) -> tuple[tuple, dict] | None:
            hidden = args[0] if args else kwargs["hidden_states"]
            if index == 0:
                hidden = hidden.detach().requires_grad_(True)
            seen[index] = hidden
            if index != 0:
                return None
            if args:
                return (hidden, *args[1:]), kwargs
            return args, {**kwargs, "hidden_states": hidden}

        return hook

    handles = [
        layer.register_forward_pre_hook(recorder(i), with_kwargs=True)
        for i, layer in enumerate(layers)
    ]
    try:
        yield seen
    finally:
        for handle in handles:
            handle.remove()


def answer_targets(batch: PreparedBatch) -> list[list[tuple[int, int | None]]]:
    """Per row: (position whose logits predict it, answer token id) for each answer token.

    An empty answer gives [(last prompt position, None)]: the target is then the top logit.
    """
    ids = batch.input_ids
    out = []
    for row, g in enumerate(batch.groups):
        if len(g.output):
            out.append([(p - 1, int(ids[row, p])) for p in g.output])
        else:
            out.append([(g.last_prompt_position, None)])
    return out


def _raw_cams(adapter: ModelAdapter, inputs: dict[str, Any], batch: PreparedBatch) -> torch.Tensor:
    """[B, L, S] un-normalised ReLU maps (zero outside each row's image span)."""
    targets = answer_targets(batch)
    keep = sorted({p for row in targets for p, _ in row})
    column = {p: i for i, p in enumerate(keep)}
    layers = adapter.decoder_layers()
    model = adapter.model
    with frozen(model), layer_inputs(layers) as seen, torch.enable_grad():
        logits = model(
            **inputs,
            position_ids=adapter.position_ids(batch),
            use_cache=False,
            logits_to_keep=torch.tensor(keep, device=adapter.device),
        ).logits
        logits = compat.kept_logits(logits, keep)  # [B, len(keep), V]
        total = logits.new_zeros(())
        for row, pairs in enumerate(targets):
            for pos, token in pairs:
                vec = logits[row, column[pos]]
                total = total + (vec.max() if token is None else vec[token])
        hidden = [h for h in seen if h is not None]
        if len(hidden) != len(layers):
            raise RuntimeError(f"recorded {len(hidden)} of {len(layers)} decoder layer inputs")
        grads = torch.autograd.grad(total, hidden)
    maps = torch.zeros(len(batch), len(layers), batch.seq_len)
    for row, g in enumerate(batch.groups):
        img = torch.tensor(list(g.image), dtype=torch.long)
        for layer, (h, grad) in enumerate(zip(hidden, grads, strict=True)):
            h_img, g_img = h[row, img].detach().float(), grad[row, img].float()
            weights = g_img.clamp(min=0).mean(dim=0)  # [D]
            maps[row, layer, img] = torch.relu(h_img @ weights).cpu()
    return maps


def llava_cam(
    adapter: ModelAdapter,
    batch: PreparedBatch,
    smooth_n: int = 0,
    smooth_sigma: float = 0.15,
    seed: int = 0,
) -> np.ndarray:
    """[B, L, S] CAM per row and layer, each layer normalised to [0, 1] over the image.

    `batch` must carry the teacher-forced answers (`build_batch(..., answers=...)`).
    """
    if smooth_n <= 0:
        raw = _raw_cams(adapter, batch.inputs, batch)
    else:
        pixels = batch.inputs["pixel_values"]
        spread = float(pixels.max() - pixels.min()) * smooth_sigma
        gen = torch.Generator().manual_seed(seed)
        raw = torch.zeros(len(batch), adapter.num_layers, batch.seq_len)
        for _ in range(smooth_n):
            noise = torch.randn(pixels.shape, generator=gen).to(pixels.device, pixels.dtype)
            inputs = dict(batch.inputs, pixel_values=pixels + noise * spread)
            raw += _raw_cams(adapter, inputs, batch)
        raw /= smooth_n
    peak = raw.amax(dim=-1, keepdim=True)
    return torch.where(peak > 0, raw / peak.clamp(min=1e-30), raw).numpy()

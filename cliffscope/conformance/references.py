"""Independent references the conformance checks compare the engines with.

Each takes another road than the engine it checks: the text-only input is a plain forward of
the model on the kept token ids (no hooks); group masses come from the eager kernel's full
attention maps (`output_attentions`); the CAM reference makes the pixels the gradient leaf and
reads hidden states at layer inputs with its own hooks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from cliffscope.engines.capture import group_matrix, query_positions
from cliffscope.engines.keep import image_mask

if TYPE_CHECKING:
    from cliffscope.models.base import ModelAdapter, PreparedBatch


@torch.no_grad()
def text_only_logits(adapter: ModelAdapter, batch: PreparedBatch) -> torch.Tensor:
    """Last-position logits of the prompt as text alone: every image token becomes a padding
    hole (pad id, attention mask 0), so no pixels reach the model and every text token keeps
    its original position AND index (sliding windows count indices; the engines count original
    positions, so a compacted text-only input would not be the same model input)."""
    image = image_mask(batch)
    pad = adapter.tokenizer.pad_token_id or 0
    out = adapter.model(
        input_ids=batch.input_ids.masked_fill(image, pad),
        attention_mask=(batch.attention_mask.bool() & ~image).long(),
        position_ids=adapter.position_ids(batch),
    ).logits[:, -1]
    adapter.reset_state()
    return out.float()


@torch.no_grad()
def eager_masses(eager: ModelAdapter, batch: PreparedBatch, query: str, heads: str) -> np.ndarray:
    """[B, L, 4] group masses read off the eager kernel's full attention maps."""
    maps = eager.model(
        **batch.inputs,
        position_ids=eager.position_ids(batch),
        output_attentions=True,
        use_cache=False,
    ).attentions
    eager.reset_state()
    positions = query_positions(batch.groups, query)  # type: ignore[arg-type]
    onehot = group_matrix(batch.groups, batch.seq_len).numpy()
    out = np.zeros((len(batch), len(maps), 4))
    for layer, attn in enumerate(maps):
        for row, pos in enumerate(positions):
            per_head = attn[row][:, pos, :].float().numpy() @ onehot[row]  # [H, Q, 4]
            reduced = per_head.mean(0) if heads == "mean" else per_head.max(0)
            out[row, layer] = reduced.mean(0)
    return out


def _layer_input_recorder(layers: Any, seen: list) -> list:
    def record(module: Any, args: tuple, kwargs: dict) -> None:
        hidden = args[0] if args else kwargs["hidden_states"]
        hidden.retain_grad()
        seen.append(hidden)

    return [layer.register_forward_pre_hook(record, with_kwargs=True) for layer in layers]


def reference_cam(adapter: ModelAdapter, batch: PreparedBatch) -> np.ndarray:
    """[B, L, S] CAM with the pixels as the gradient leaf and a plain backward of the summed
    answer-token logits (every position's logits, no `logits_to_keep`)."""
    model = adapter.model
    inputs = dict(batch.inputs)
    inputs["pixel_values"] = inputs["pixel_values"].clone().requires_grad_(True)
    flags = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    seen: list[torch.Tensor] = []
    handles = _layer_input_recorder(adapter.decoder_layers(), seen)
    try:
        with torch.enable_grad():
            out = model(**inputs, position_ids=adapter.position_ids(batch), use_cache=False)
            total = out.logits.new_zeros(())
            for row, g in enumerate(batch.groups):
                for pos in g.output:
                    total = total + out.logits[row, pos - 1, batch.input_ids[row, pos]]
            total.backward()
    finally:
        for handle in handles:
            handle.remove()
        for p, flag in zip(model.parameters(), flags, strict=True):
            p.requires_grad_(flag)
        adapter.reset_state()
    ref = np.zeros((len(batch), adapter.num_layers, batch.seq_len), dtype=np.float32)
    for layer, hidden in enumerate(seen[: adapter.num_layers]):
        for row, g in enumerate(batch.groups):
            img = list(g.image)
            weights = torch.clamp(hidden.grad[row, img].float(), min=0).mean(0)
            cam = torch.relu((hidden[row, img].float() * weights).sum(-1)).detach()
            if cam.max() > 0:
                cam = cam / cam.max()
            ref[row, layer, img] = cam.numpy()
    return ref

"""Training forward of the deep demo: shared system prefix, optional per-row image truncation.

One decoder pass written against the public pieces of `LlavaForConditionalGeneration`
(frozen CLIP tower, projector, Llama layers, norm, lm_head) so that a row can lose its image
tokens from layer ``k`` on, exactly as a cliffscope truncation sweep removes them: from layer
``k`` on no text position sees an image key. For text positions that is the same as dropping
the image tokens (text keeps its original positions, as in the sweep's `drop` mode), so a
model trained with it is trained on the very branches the sweep scores.

A row can instead see *another row's* image tokens from layer ``k`` on (``swap_from``): its
text positions then meet a wrong image in layers ``k`` and up, and are only answered right by
what they read from their own image below ``k``.

The system prefix every row shares (BOS, system prompt, ``USER:``) runs once with batch
size 1 and reaches the batch as a KV cache, as in `train.shared_prefix_loss`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


def image_embeddings(model: Any, pixel_values: torch.Tensor) -> torch.Tensor:
    """Projected image features [B, N, d]; the CLIP tower is frozen and runs without grad."""
    import torch

    cfg = model.config
    with torch.no_grad():
        hidden = model.model.vision_tower(pixel_values, output_hidden_states=True).hidden_states
        feats = hidden[cfg.vision_feature_layer]
        if cfg.vision_feature_select_strategy == "default":
            feats = feats[:, 1:]
    return model.model.multi_modal_projector(feats)


def masks(
    rest_len: int, prefix_len: int, image_keys: torch.Tensor | None, trunc_from: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Causal mask [1, 1, Q, P+Q] over prefix + rest, and the same without image keys [B, ...]."""
    import torch

    total = prefix_len + rest_len
    causal = torch.ones(rest_len, total, dtype=torch.bool).tril(prefix_len)[None, None]
    if image_keys is None or trunc_from is None:
        return causal, None
    keys = torch.nn.functional.pad(image_keys, (prefix_len, 0), value=False)
    return causal, causal & ~keys[:, None, None, :]


def additive(mask: torch.Tensor, dtype: Any) -> torch.Tensor:
    """Boolean keep-mask -> additive float mask (eager attention adds it; sdpa takes both)."""
    import torch

    zero = torch.zeros((), dtype=dtype)
    return torch.where(mask, zero, torch.tensor(torch.finfo(dtype).min, dtype=dtype))


def decoder_loss(
    model: Any,
    input_ids: torch.Tensor,
    labels: torch.Tensor,
    prefix_len: int,
    pixel_values: torch.Tensor | None = None,
    trunc_from: torch.Tensor | None = None,
    swap_from: torch.Tensor | None = None,
    partner: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean cross-entropy over labelled positions after the shared prefix.

    ``labels`` are aligned with ``input_ids`` (-100 = no loss); position t predicts t + 1.
    ``trunc_from`` [B] is, per row, the first layer whose text positions no longer see the
    image (``num_layers`` or more: never). ``swap_from`` [B] is, per row, the first layer at
    whose input the row's image-token states are replaced by row ``partner[b]``'s (never:
    ``num_layers`` or more). Rows must share ``input_ids[:, :prefix_len]``.
    """
    import torch
    from transformers import DynamicCache

    lm = model.model.language_model
    batch = input_ids.shape[0]
    cache = DynamicCache(config=model.config.text_config)
    lm(input_ids=input_ids[:1, :prefix_len], past_key_values=cache, use_cache=True)
    cache.batch_repeat_interleave(batch)
    rest = input_ids[:, prefix_len:]
    hidden = lm.embed_tokens(rest)
    is_image = None
    if pixel_values is not None:
        is_image = rest == model.config.image_token_id
        feats = image_embeddings(model, pixel_values).to(hidden.dtype)
        hidden = hidden.masked_scatter(is_image[..., None], feats.reshape(-1, feats.shape[-1]))
    positions = torch.arange(prefix_len, input_ids.shape[1])[None]
    rotary = lm.rotary_emb(hidden, position_ids=positions)
    full, cut = masks(rest.shape[1], prefix_len, is_image, trunc_from)
    if swap_from is not None and (is_image is None or partner is None):
        raise ValueError("swapping images needs pixel values and a partner per row")
    if swap_from is not None and not bool((is_image == is_image[partner]).all()):
        raise ValueError("swapped rows must hold their image tokens at the same positions")
    for layer_idx, layer in enumerate(lm.layers):
        if swap_from is not None:
            swap = (swap_from == layer_idx)[:, None, None] & is_image[..., None]
            hidden = torch.where(swap, hidden[partner], hidden)
        mask = full
        if cut is not None and trunc_from is not None:
            mask = torch.where((trunc_from <= layer_idx)[:, None, None, None], cut, full)
        hidden = layer(
            hidden,
            attention_mask=additive(mask, hidden.dtype),
            position_embeddings=rotary,
            position_ids=positions,
            past_key_values=cache,
            use_cache=True,
        )
    target = labels[:, prefix_len + 1 :]
    keep = target != -100
    logits = model.lm_head(lm.norm(hidden[:, :-1][keep]))
    return torch.nn.functional.cross_entropy(logits.float(), target[keep])

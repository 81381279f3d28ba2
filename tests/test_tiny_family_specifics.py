"""Family specifics of the tiny 2026 checkpoints that the engines rely on: OneVision's newline
features, Qwen3-VL's deepstack injection between decoder layers, Gemma 3's mixed window/global
layers, bidirectional image attention and pan-and-scan crops.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from tests.tiny_family_layouts import IMAGES, FamilyLoader, image_runs, onevision_grids

pytestmark = pytest.mark.slow


# --- family specifics the engines rely on ----------------------------------------------------


def _capture(module: torch.nn.Module, store: list, *, pre: bool = False) -> Any:
    """Record a copy of a module's first input (pre) or of its output tensor, per call (4.57's
    deepstack adds into the layer's output tensor in place; 5.x adds into a clone)."""
    if pre:
        return module.register_forward_pre_hook(
            lambda m, args, kwargs: store.append(
                (args[0] if args else kwargs["hidden_states"]).clone()
            ),
            with_kwargs=True,
        )
    return module.register_forward_hook(
        lambda m, args, out: store.append((out[0] if isinstance(out, tuple) else out).clone())
    )


def test_onevision_newline_features_close_each_tile_row(tiny_family: FamilyLoader) -> None:
    """In the image run: side*side base features, then rows of `cols` features + the learned
    image_newline vector (same image token id, so only the embeddings tell them apart)."""
    loaded = tiny_family("llava-onevision")
    core = loaded.model.model
    seen: list = []
    handle = core.language_model.register_forward_pre_hook(
        lambda m, args, kwargs: seen.append(kwargs["inputs_embeds"]), with_kwargs=True
    )
    enc = loaded.encode(IMAGES)
    try:
        with torch.no_grad():
            loaded.model(**enc)
    finally:
        handle.remove()
    grids = onevision_grids(enc, loaded.model.config)
    for embeds, row, (side, rows, cols) in zip(seen[0], enc["input_ids"], grids, strict=True):
        image = embeds[row == loaded.image_id]
        is_newline = (image == core.image_newline).all(-1)
        expected = torch.zeros(side * side + rows * (cols + 1), dtype=torch.bool)
        expected[side * side + cols :: cols + 1] = True
        assert torch.equal(is_newline, expected)


def test_qwen3_vl_deepstack_adds_to_image_rows_after_the_first_layers(
    tiny_family: FamilyLoader,
) -> None:
    """Deepstack features are added to the image positions of the hidden states *between*
    decoder layers i and i+1 for i < len(deepstack_visual_indexes), outside the layers."""
    loaded = tiny_family("qwen3-vl")
    text = loaded.model.model.language_model
    layers = list(text.layers)
    outs: list = []
    ins: list = []
    hooks = [_capture(layer, outs) for layer in layers]
    hooks += [_capture(layer, ins, pre=True) for layer in layers[1:]] + [
        _capture(text.norm, ins, pre=True)
    ]
    enc = loaded.encode(IMAGES)
    try:
        with torch.no_grad():
            loaded.model(**enc)
    finally:
        for hook in hooks:
            hook.remove()
    image = enc["input_ids"] == loaded.image_id
    injected = []
    for i, (out, nxt) in enumerate(zip(outs, ins, strict=True)):
        changed = (out != nxt).any(-1)
        assert not (changed & ~image).any()
        if changed.any():
            assert torch.equal(changed, image)
            injected.append(i)
    assert injected == list(range(len(loaded.model.config.vision_config.deepstack_visual_indexes)))


def test_gemma3_mixes_window_and_global_layers_with_their_own_rope(
    tiny_family: FamilyLoader,
) -> None:
    loaded = tiny_family("gemma3")
    text = loaded.model.config.text_config
    enc = loaded.encode(IMAGES)
    assert {"sliding_attention", "full_attention"} == set(text.layer_types)
    assert text.sliding_window < enc["input_ids"].shape[1] // 2
    lm = loaded.model.model.language_model
    if hasattr(lm, "rotary_emb_local"):  # 4.57: one rotary module per layer type
        local, full = lm.rotary_emb_local.inv_freq, lm.rotary_emb.inv_freq
    else:  # 5.x: one module holding an inv_freq buffer per layer type
        local, full = (
            lm.rotary_emb.sliding_attention_inv_freq,
            lm.rotary_emb.full_attention_inv_freq,
        )
    assert local.shape == full.shape and not torch.allclose(local, full)
    projector = loaded.model.model.multi_modal_projector.mm_input_projection_weight
    assert projector.abs().amin(-1).gt(0).all()


def test_gemma3_token_type_ids_make_image_attention_bidirectional(
    tiny_family: FamilyLoader,
) -> None:
    """Without token_type_ids the image block is causal: the first image position's logits change."""
    loaded = tiny_family("gemma3")
    enc = loaded.encode(IMAGES)
    assert torch.equal(enc["token_type_ids"].bool(), enc["input_ids"] == loaded.image_id)
    plain = {k: v for k, v in enc.items() if k != "token_type_ids"}
    first = (enc["input_ids"][0] == loaded.image_id).nonzero()[0, 0]
    with torch.no_grad():
        both_ways = loaded.model(**enc).logits[0, first]
        causal = loaded.model(**plain).logits[0, first]
    assert (both_ways - causal).abs().max() > 1e-4


def test_gemma3_pan_and_scan_adds_one_framed_run_per_crop(tiny_family: FamilyLoader) -> None:
    """Pan and scan is off by default (as in the released processors); on, each image becomes a
    base view plus crops, each its own <start_of_image> run <end_of_image> span."""
    loaded = tiny_family("gemma3")
    # the processor's own call defaults (min crop 256 px) override the image processor's
    enc = loaded.encode(IMAGES, do_pan_and_scan=True, pan_and_scan_min_crop_size=16)
    per_image = loaded.model.config.mm_tokens_per_image
    boi, eoi = loaded.ids("<start_of_image>", "<end_of_image>")
    views = 0
    for row in enc["input_ids"]:
        runs = image_runs(row, loaded.image_id)
        assert len(runs) > 1 and all(e - s == per_image for s, e in runs)
        assert all(row[s - 1].item() == boi and row[e].item() == eoi for s, e in runs)
        views += len(runs)
    assert views == enc["pixel_values"].shape[0]
    with torch.no_grad():
        loaded.model(**enc)

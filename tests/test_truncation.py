"""Image-token truncation on tiny LLaVA and Qwen2-VL checkpoints, eager and sdpa.

Properties (each would catch a real slicing bug): k = L is the untouched model bit for bit;
k = 0 is a text-only input with the original positions; drop equals mask; the KV cache of
layers >= k holds text only; cached greedy generation equals uncached; a left-padded batch
answers like its rows one at a time (Qwen2-VL rows have different image-token counts, so the
kept positions are re-padded); keep_ratio 1 / 0 equal no truncation / drop; the FastV ranking
equals the eager kernel's own attention row; hooks are gone after the context.
"""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from cliffscope.engines.keep import (
    gather_positions,
    generation_positions,
    image_mask,
    keep_plan,
    last_row_attention,
)
from cliffscope.engines.truncation import truncate
from cliffscope.errors import CliffscopeError
from cliffscope.models.loading import load_adapter
from tests.tiny_models import tiny_profile

pytestmark = pytest.mark.slow

PROMPTS = ["What is the colour?", "What is the colour of the shape in this image?"]
CASES = [(f, a) for f in ("llava", "qwen2-vl") for a in ("sdpa", "eager")]
PATHS = {"llava": "tiny_llava_path", "qwen2-vl": "tiny_qwen2_vl_path"}


def _images() -> list[Image.Image]:
    return [Image.new("RGB", (40, 30), (200, 20, 20)), Image.new("RGB", (64, 64), (20, 20, 200))]


@pytest.fixture(scope="module", params=CASES, ids=[f"{f}-{a}" for f, a in CASES])
def setup(request: pytest.FixtureRequest):
    family, attn = request.param
    adapter = load_adapter(tiny_profile(request.getfixturevalue(PATHS[family]), family, attn))
    batch = adapter.build_batch(_images(), PROMPTS)
    return adapter, batch, generation_positions(adapter, batch)


def _last_logits(adapter, batch, positions, k: int, **kw) -> torch.Tensor:
    with torch.no_grad(), truncate(adapter, k, batch, **kw):
        return adapter.model(**batch.inputs, position_ids=positions).logits[:, -1]


def test_k_equal_to_depth_is_the_untouched_model(setup) -> None:
    adapter, batch, positions = setup
    with torch.no_grad():
        plain = adapter.model(**batch.inputs, position_ids=positions).logits[:, -1]
    assert torch.equal(_last_logits(adapter, batch, positions, adapter.num_layers), plain)


def test_k_zero_is_a_text_only_input_with_original_positions(setup) -> None:
    adapter, batch, positions = setup
    image = image_mask(batch)
    plan = keep_plan(~image, batch.attention_mask.bool(), image)
    if positions.dim() == 2:
        kept_positions = gather_positions(positions, plan.index)
    else:  # Qwen2-VL: (text + 3 M-RoPE rows, B, S)
        kept_positions = torch.stack([gather_positions(p, plan.index) for p in positions])
    with torch.no_grad():
        text_only = adapter.model(
            input_ids=gather_positions(batch.input_ids, plan.index),
            attention_mask=plan.valid.long(),
            position_ids=kept_positions,
        ).logits[:, -1]
    truncated = _last_logits(adapter, batch, positions, 0)
    torch.testing.assert_close(truncated, text_only, atol=1e-5, rtol=0)
    with torch.no_grad():  # and the image did matter to the untouched model
        plain = adapter.model(**batch.inputs, position_ids=positions).logits[:, -1]
    assert (plain - truncated).abs().max() > 1e-3


def test_drop_equals_mask_at_every_layer(setup) -> None:
    adapter, batch, positions = setup
    for k in range(adapter.num_layers):
        drop = _last_logits(adapter, batch, positions, k, mode="drop")
        mask = _last_logits(adapter, batch, positions, k, mode="mask")
        torch.testing.assert_close(drop, mask, atol=1e-5, rtol=0)


def test_cache_of_truncated_layers_holds_text_only(setup) -> None:
    adapter, batch, positions = setup
    k = 1
    with torch.no_grad(), truncate(adapter, k, batch) as trunc:
        out = adapter.model(**batch.inputs, position_ids=positions, use_cache=True)
    cache = out.past_key_values
    assert cache.get_seq_length(0) == batch.seq_len
    kept = trunc.plan.length
    assert kept == batch.seq_len - min(len(g.image) for g in batch.groups)
    assert all(cache.get_seq_length(j) == kept for j in range(k, adapter.num_layers))
    assert out.logits.shape[1] == kept


@pytest.mark.parametrize("mode", ["drop", "mask"])
def test_cached_generation_equals_uncached_and_batch_equals_rows(setup, mode: str) -> None:
    adapter, batch, _ = setup
    pad = adapter.tokenizer.pad_token_id
    stop = set(adapter.stop_token_ids())
    for k in (0, adapter.num_layers - 1):
        with truncate(adapter, k, batch, mode=mode):
            cached = adapter.generate_ids(batch, 5)
        with truncate(adapter, k, batch, mode=mode), torch.no_grad():
            raw = adapter.model.generate(
                **batch.inputs, max_new_tokens=5, do_sample=False, use_cache=False,
                pad_token_id=pad,
            )  # fmt: skip
        uncached = [
            row[: next((i for i, t in enumerate(row) if t in stop), len(row))]
            for row in raw[:, batch.seq_len :].tolist()
        ]
        assert cached == uncached, f"k={k}"
        rows = []
        for image, prompt in zip(_images(), PROMPTS, strict=True):
            single = adapter.build_batch([image], [prompt])
            with truncate(adapter, k, single, mode=mode):
                rows += adapter.generate_ids(single, 5)
        assert cached == rows, f"k={k}"


def test_keep_ratio_one_is_untouched_and_zero_is_drop(setup) -> None:
    adapter, batch, positions = setup
    with torch.no_grad():
        plain = adapter.model(**batch.inputs, position_ids=positions).logits[:, -1]
    for k in range(1, adapter.num_layers):
        keep_all = _last_logits(adapter, batch, positions, k, keep_ratio=1.0)
        torch.testing.assert_close(keep_all, plain, atol=1e-5, rtol=0)
        keep_none = _last_logits(adapter, batch, positions, k, keep_ratio=0.0)
        torch.testing.assert_close(keep_none, _last_logits(adapter, batch, positions, k))
        half = _last_logits(adapter, batch, positions, k, keep_ratio=0.5)
        half_mask = _last_logits(adapter, batch, positions, k, keep_ratio=0.5, mode="mask")
        torch.testing.assert_close(half, half_mask, atol=1e-5, rtol=0)


def test_keep_ratio_keeps_the_most_attended_image_tokens(setup) -> None:
    adapter, batch, positions = setup
    k = 2
    with truncate(adapter, k, batch, keep_ratio=0.25) as trunc, torch.no_grad():
        adapter.model(**batch.inputs, position_ids=positions)
    selected = trunc.selected
    for row, groups in enumerate(batch.groups):
        n_image = len(groups.image)
        assert int(selected[row].sum()) == int(0.25 * n_image + 0.5)
        assert selected[row, groups.image.start : groups.image.stop].sum() == selected[row].sum()
        assert trunc.plan.valid[row].sum() == len(groups.prompt) - n_image + selected[row].sum()


def test_ranking_equals_the_eager_kernels_attention_row(setup) -> None:
    adapter, batch, positions = setup
    if adapter.text_attention() != "eager":
        pytest.skip("attention weights come from the eager kernel")
    captured = {}
    layer = adapter.decoder_layers()[1]

    def grab(module, args, kwargs):
        captured["hidden"] = args[0] if args else kwargs["hidden_states"]
        captured["rope"] = kwargs["position_embeddings"]

    handle = layer.register_forward_pre_hook(grab, with_kwargs=True)
    try:
        with torch.no_grad():
            out = adapter.model(**batch.inputs, position_ids=positions, output_attentions=True)
    finally:
        handle.remove()
    expected = out.attentions[1][:, :, -1].float().mean(dim=1)
    ours = last_row_attention(
        layer, captured["hidden"], captured["rope"], batch.attention_mask.bool()
    )
    torch.testing.assert_close(ours, expected, atol=1e-6, rtol=0)


def test_hooks_are_removed_and_bad_arguments_rejected(setup) -> None:
    adapter, batch, positions = setup
    layers = adapter.decoder_layers()
    with pytest.raises(RuntimeError), truncate(adapter, 1, batch):
        assert all(len(layer._forward_pre_hooks) == 1 for layer in layers[1:])
        raise RuntimeError("boom")
    assert all(len(layer._forward_pre_hooks) == 0 for layer in layers)
    with pytest.raises(CliffscopeError):
        truncate(adapter, adapter.num_layers + 1, batch)
    with pytest.raises(CliffscopeError):
        truncate(adapter, 0, batch, keep_ratio=0.5)
    with pytest.raises(CliffscopeError):
        truncate(adapter, 1, batch, mode="hide")  # type: ignore[arg-type]

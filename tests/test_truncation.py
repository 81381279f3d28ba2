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

from cliffscope.engines.keep import LastRowTap, image_mask, keep_plan
from cliffscope.engines.layer_calls import take
from cliffscope.engines.truncation import truncate
from cliffscope.errors import CliffscopeError
from cliffscope.models import compat
from cliffscope.models.kernel import tapping
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
    return adapter, batch, adapter.position_ids(batch)


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
    kept_positions = take(positions, plan.index, positions.dim() - 1)  # (B, S) or (4, B, S)
    with torch.no_grad():
        text_only = adapter.model(
            input_ids=take(batch.input_ids, plan.index, 1),
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
    cache = compat.output_cache(out)
    assert cache.get_seq_length(0) == batch.seq_len
    kept = trunc.plan.length
    assert kept == batch.seq_len - min(len(g.image) for g in batch.groups)
    assert all(cache.get_seq_length(j) == kept for j in range(k, adapter.num_layers))
    assert out.logits.shape[1] == kept


@pytest.mark.parametrize("mode", ["drop", "mask"])
def test_cached_generation_equals_uncached_and_batch_equals_rows(setup, mode: str) -> None:
    adapter, batch, _ = setup
    policy = adapter.policy
    config = policy.generation_config(
        adapter.model.generation_config, 5, adapter.tokenizer.pad_token_id
    )
    for k in (0, adapter.num_layers - 1):
        with truncate(adapter, k, batch, mode=mode):
            cached = adapter.generate_ids(batch, 5)
        with truncate(adapter, k, batch, mode=mode), torch.no_grad():
            raw = adapter.model.generate(
                **batch.inputs, generation_config=config, use_cache=False,
                logits_processor=policy.logits_processor(batch.seq_len),
            )  # fmt: skip
        adapter.reset_state()
        uncached = [policy.cut(row) for row in raw[:, batch.seq_len :].tolist()]
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
        assert selected[row, list(groups.image)].sum() == selected[row].sum()
        assert trunc.plan.valid[row].sum() == len(groups.prompt) - n_image + selected[row].sum()


def test_ranking_equals_the_eager_kernels_attention_row(setup) -> None:
    """The kernel tap FastV ranks by reads the same row the eager kernel returns as weights."""
    adapter, batch, positions = setup
    if adapter.text_attention() != "eager":
        pytest.skip("attention weights come from the eager kernel")
    tap = LastRowTap(adapter, {1})
    with torch.no_grad(), tapping(tap):
        out = adapter.model(**batch.inputs, position_ids=positions, output_attentions=True)
    expected = out.attentions[1][:, :, -1].float().mean(dim=1)
    torch.testing.assert_close(tap.rows[1], expected, atol=1e-6, rtol=0)


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

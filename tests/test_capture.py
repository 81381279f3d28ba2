"""Attention-flow capture against eager `output_attentions` on tiny LLaVA and Qwen2-VL.

The reference is computed the slow, obvious way: the eager kernel returns every layer's full
attention map, and group masses are read off it with plain indexing. The capture must agree
to 1e-5 for both query modes and both head reductions, on a left-padded batch of two with
teacher-forced answers, and with GQA (Qwen2-VL has 4 query heads on 2 key/value heads).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cliffscope.engines.capture import FlowCollector, capture_flow, group_matrix, query_positions
from cliffscope.engines.masks import allowed_keys, format_mask, visible_from_mask
from cliffscope.models.kernel import PREFIX
from cliffscope.models.loading import load_adapter
from tests.tiny_models import tiny_profile

pytestmark = pytest.mark.slow

FAMILIES = {"llava": "tiny_llava_path", "qwen2-vl": "tiny_qwen2_vl_path"}
PROMPTS = ["What is the colour of the shape in this image?", "Describe it"]
ANSWERS = ["red and blue", "yes"]


def images() -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [
        Image.fromarray(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)),
        Image.fromarray(rng.integers(0, 255, (48, 32, 3), dtype=np.uint8)),
    ]


@pytest.fixture(scope="module", params=list(FAMILIES))
def models(request: pytest.FixtureRequest):
    path = request.getfixturevalue(FAMILIES[request.param])
    sdpa = load_adapter(tiny_profile(path, request.param))
    eager = load_adapter(tiny_profile(path, request.param, attn="eager"))
    return sdpa, eager


def eager_reference(eager, batch, query: str, heads: str) -> np.ndarray:
    """[B, L, 4] from full eager attention maps."""
    with torch.no_grad():
        maps = eager.model(
            **batch.inputs,
            position_ids=eager.position_ids(batch),
            output_attentions=True,
            use_cache=False,
        ).attentions
    eager.reset_state()
    positions = query_positions(batch.groups, query)
    onehot = group_matrix(batch.groups, batch.seq_len).numpy()
    out = np.zeros((len(batch), len(maps), 4))
    for layer, attn in enumerate(maps):
        for row, pos in enumerate(positions):
            per_head = attn[row][:, pos, :].float().numpy() @ onehot[row]  # [H, Q, 4]
            reduced = per_head.mean(0) if heads == "mean" else per_head.max(0)
            out[row, layer] = reduced.mean(0)
    return out


@pytest.mark.parametrize("query", ["last", "answer"])
@pytest.mark.parametrize("heads", ["mean", "max"])
def test_capture_matches_eager_attentions(models, query: str, heads: str) -> None:
    sdpa, eager = models
    batch = sdpa.build_batch(images(), PROMPTS, answers=ANSWERS)
    assert len(batch.groups[1].pad) > 0, "the test needs a left-padded row"
    assert len(batch.groups[0].output) == 3
    reference = eager_reference(eager, batch, query, heads)
    got = capture_flow(sdpa, batch, query, heads).mass()
    assert got.shape == reference.shape == (2, sdpa.num_layers, 4)
    np.testing.assert_allclose(got, reference, atol=1e-5)
    # wrapping the eager kernel (additive float mask) gives the same numbers
    np.testing.assert_allclose(
        capture_flow(eager, batch, query, heads).mass(), reference, atol=1e-5
    )


def test_each_heads_groups_sum_to_one_and_shares_are_consistent(models) -> None:
    sdpa, _ = models
    batch = sdpa.build_batch(images(), PROMPTS, answers=ANSWERS)
    flow = capture_flow(sdpa, batch, "answer", "mean")
    n_layers, n_rows, n_heads, _, n_groups = flow.per_head.shape
    assert (n_layers, n_rows, n_heads, n_groups) == (sdpa.num_layers, 2, sdpa.num_heads, 4)
    sums = flow.per_head.sum(-1).transpose(0, 2, 1, 3)[:, :, flow.valid]  # [L, H, valid]
    np.testing.assert_allclose(sums, 1.0, atol=1e-5)
    np.testing.assert_allclose(flow.even_spread().sum(-1), 1.0, atol=1e-6)
    # answer queries see the answer tokens up to themselves: 1, 2, 3 output keys for row 0
    assert flow.counts[0, :3, 3].tolist() == [1, 2, 3]
    # density x visible keys = mass (mean over heads is linear)
    mass, density = flow.mass(), flow.density()
    n_img = len(batch.groups[0].image)
    np.testing.assert_allclose(density[0, :, 1] * n_img, mass[0, :, 1], rtol=1e-5)
    # the last prompt position cannot see the answer
    last = capture_flow(sdpa, batch, "last", "mean")
    assert np.all(last.mass()[..., 3] == 0) and np.all(last.even_spread()[:, 3] == 0)


def test_rows_do_not_depend_on_batch_padding(models) -> None:
    sdpa, _ = models
    ims = images()
    both = capture_flow(sdpa, sdpa.build_batch(ims, PROMPTS, answers=ANSWERS), "answer").mass()
    alone = capture_flow(
        sdpa, sdpa.build_batch(ims[1:], PROMPTS[1:], answers=ANSWERS[1:]), "answer"
    )
    np.testing.assert_allclose(both[1], alone.mass()[0], atol=1e-5)


def test_map_rows_keep_attention_rows_that_add_up_to_the_image_mass(models) -> None:
    sdpa, _ = models
    batch = sdpa.build_batch(images(), PROMPTS, answers=ANSWERS)
    flow = capture_flow(sdpa, batch, "last", "mean", map_rows=[1])
    assert set(flow.key_attention) == {1}
    rows = flow.key_attention[1]  # [L, K]
    image = list(batch.groups[1].image)
    np.testing.assert_allclose(rows[:, image].sum(-1), flow.mass()[1, :, 1], atol=1e-5)
    assert np.all(rows[:, list(batch.groups[1].pad)] == 0)


def test_the_wrapped_kernel_is_a_pass_through_without_taps(models) -> None:
    """cliffscope's kernel wraps the decoder's from load on; untapped it changes no bit."""
    sdpa, _ = models
    batch = sdpa.build_batch(images(), PROMPTS, answers=ANSWERS)
    assert sdpa.attention_kernel == PREFIX + "sdpa" and sdpa.text_attention() == "sdpa"
    capture_flow(sdpa, batch, "answer")  # taps are gone after the call
    with torch.no_grad():
        wrapped = sdpa.model(**batch.inputs, use_cache=False).logits
    key = sdpa.text_config_key()
    sdpa.model.set_attn_implementation({key: "sdpa"})  # the bare kernel
    try:
        with torch.no_grad():
            plain = sdpa.model(**batch.inputs, use_cache=False).logits
    finally:
        sdpa.set_text_attention("sdpa")
    assert torch.equal(wrapped, plain)
    assert sdpa.attention_kernel == PREFIX + "sdpa"


def test_padding_mask_as_flash_attention_passes_it_matches_the_4d_mask() -> None:
    """Flash-attention hands the kernel a 2-D padding mask, sdpa a 4-D boolean one, eager an
    additive float one: the capture reads the same visible keys off all three."""
    from cliffscope.models.base import TokenGroups

    padding = torch.tensor([[1, 1, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1]])
    groups = [
        TokenGroups(range(0, 1), range(1, 3), range(3, 5), range(5, 6), range(0, 0), 6),
        TokenGroups(range(2, 3), range(3, 4), range(4, 5), range(5, 6), range(0, 2), 6),
    ]
    collector = FlowCollector(groups, [[4, 5], [4, 5]], layer_index=lambda module: 0)
    arange = torch.arange(6).expand(2, 6)
    allowed = allowed_keys(padding.bool(), arange, arange)
    pos = collector.positions
    from_2d = visible_from_mask(padding, pos, 6, 6, "cpu")
    for kernel in ("sdpa", "eager"):
        mask4d = format_mask(allowed, kernel, torch.float32)
        assert torch.equal(visible_from_mask(mask4d, pos, 6, 6, "cpu"), from_2d), kernel
    assert from_2d[1, 0, 0].tolist() == [False, False, True, True, True, False]


def test_capture_after_generation_is_unchanged(models) -> None:
    """Qwen2-VL caches rope_deltas between calls; generation must not leak into the capture."""
    sdpa, _ = models
    batch = sdpa.build_batch(images(), PROMPTS, answers=ANSWERS)
    before = capture_flow(sdpa, batch, "answer").mass()
    sdpa.generate_ids(sdpa.build_batch(images()[::-1], ["Describe the image briefly"] * 2), 3)
    np.testing.assert_allclose(capture_flow(sdpa, batch, "answer").mass(), before, atol=1e-6)

"""The prefix-shared sweep gives the same answers as running every k on its own.

On tiny LLaVA and Qwen2-VL (rows with different image-token counts), eager and sdpa: the same
greedy answers for the baseline and every k, single-token and generated, first-token logits
within 1e-5, with and without keep_ratio. Also: k = L and the baseline agree, and generated
answers are cut at the stop tokens exactly like `generate`.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from PIL import Image

from cliffscope.engines.sweep import BASE, naive_sweep, shared_sweep
from cliffscope.models.loading import load_adapter
from tests.tiny_models import tiny_profile

pytestmark = pytest.mark.slow

PROMPTS = ["What is the colour?", "What is the colour of the shape in this image?", "Describe"]
CASES = [(f, a) for f in ("llava", "qwen2-vl") for a in ("sdpa", "eager")]
PATHS = {"llava": "tiny_llava_path", "qwen2-vl": "tiny_qwen2_vl_path"}


@pytest.fixture(scope="module", params=CASES, ids=[f"{f}-{a}" for f, a in CASES])
def setup(request: pytest.FixtureRequest):
    family, attn = request.param
    adapter = load_adapter(tiny_profile(request.getfixturevalue(PATHS[family]), family, attn))
    images = [
        Image.new("RGB", (40, 30), (200, 20, 20)),
        Image.new("RGB", (64, 64), (20, 20, 200)),
        Image.new("RGB", (30, 50), (20, 200, 20)),
    ]
    return adapter, adapter.build_batch(images, PROMPTS)


def _same(shared, naive) -> None:
    assert shared.answers == naive.answers
    assert set(shared.first_logits) == set(naive.first_logits)
    for k, logits in naive.first_logits.items():
        torch.testing.assert_close(shared.first_logits[k], logits, atol=1e-5, rtol=0)


@pytest.mark.parametrize("new_tokens", [1, 6])
def test_shared_equals_naive(setup, new_tokens: int) -> None:
    adapter, batch = setup
    layers = list(range(adapter.num_layers + 1))
    shared = shared_sweep(adapter, batch, layers, new_tokens)
    _same(shared, naive_sweep(adapter, batch, layers, new_tokens))
    assert set(shared.answers) == {BASE, *range(adapter.num_layers)}
    lengths = {len(a) for answers in shared.answers.values() for a in answers}
    assert max(lengths) == new_tokens  # some answers really were decoded to the end
    assert not torch.equal(shared.first_logits[0], shared.first_logits[BASE])


def test_shared_equals_naive_with_keep_ratio_and_a_subset_of_layers(setup) -> None:
    adapter, batch = setup
    layers = [1, adapter.num_layers - 1]
    _same(
        shared_sweep(adapter, batch, layers, 4, keep_ratio=0.5),
        naive_sweep(adapter, batch, layers, 4, keep_ratio=0.5),
    )


def test_mask_mode_answers_like_the_shared_drop_path(setup) -> None:
    adapter, batch = setup
    layers = list(range(adapter.num_layers))
    _same(shared_sweep(adapter, batch, layers, 4), naive_sweep(adapter, batch, layers, 4, "mask"))


def test_answers_are_cut_at_the_first_stop_token(setup) -> None:
    adapter, batch = setup
    shared = shared_sweep(adapter, batch, [0], 1)
    forced = adapter.policy.choose(shared.first_logits[0], [[]] * len(PROMPTS), 0)
    original = adapter.policy
    adapter.policy = replace(original, stop_ids=(*original.stop_ids, *forced.tolist()))
    try:
        stopped = shared_sweep(adapter, batch, [0], 5)
        naive = naive_sweep(adapter, batch, [0], 5)
    finally:
        adapter.policy = original
    assert stopped.answers[0] == [[] for _ in PROMPTS]
    assert stopped.answers == naive.answers


@pytest.mark.parametrize(
    "family,fixture",
    [
        ("llava-next", "tiny_llava_next_path"),
        ("qwen2.5-vl", "tiny_qwen2_5_vl_path"),
        ("auto", "tiny_vipllava_path"),
    ],
)
def test_other_families_shared_equals_naive(request, family: str, fixture: str) -> None:
    """LLaVA-NeXT (anyres, per-row image counts), Qwen2.5-VL, and the generic adapter."""
    adapter = load_adapter(tiny_profile(request.getfixturevalue(fixture), family))
    images = [Image.new("RGB", (40, 30), (200, 20, 20)), Image.new("RGB", (64, 64), (20, 20, 200))]
    batch = adapter.build_batch(images, PROMPTS[:2])
    layers = [0, 2, adapter.num_layers]
    _same(shared_sweep(adapter, batch, layers, 3), naive_sweep(adapter, batch, layers, 3))
    _same(
        shared_sweep(adapter, batch, [1], 3, keep_ratio=0.5),
        naive_sweep(adapter, batch, [1], 3, keep_ratio=0.5),
    )

"""LLaVA-CAM against a reference computed directly with autograd on the tiny models.

The reference takes another road on purpose: the pixels are the grad leaf (not the first
layer's input), hidden states come from `output_hidden_states` (not hooks), logits over the
whole sequence (not `logits_to_keep`), the target is summed in a Python loop and the CAM is
written per row and layer. Both must agree, and no parameter may receive a gradient.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cliffscope.engines.cam import answer_targets, llava_cam
from cliffscope.models.loading import load_adapter
from tests.tiny_models import tiny_profile

pytestmark = pytest.mark.slow

FAMILIES = {"llava": "tiny_llava_path", "qwen2-vl": "tiny_qwen2_vl_path"}
PROMPTS = ["What is the colour of the shape in this image?", "Describe it"]
ANSWERS = ["red and blue", "yes"]


def images() -> list[Image.Image]:
    rng = np.random.default_rng(1)
    return [
        Image.fromarray(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)),
        Image.fromarray(rng.integers(0, 255, (48, 32, 3), dtype=np.uint8)),
    ]


@pytest.fixture(scope="module", params=list(FAMILIES))
def adapter(request: pytest.FixtureRequest):
    path = request.getfixturevalue(FAMILIES[request.param])
    return load_adapter(tiny_profile(path, request.param))


def reference_cam(adapter, batch) -> np.ndarray:
    model = adapter.model
    inputs = dict(batch.inputs)
    inputs["pixel_values"] = inputs["pixel_values"].clone().requires_grad_(True)
    flags = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        out = model(**inputs, output_hidden_states=True, use_cache=False)
        hidden = out.hidden_states  # (embeddings = input of layer 0, ..., input of layer L-1, ...)
        for h in hidden:
            h.retain_grad()
        total = 0.0
        for row, g in enumerate(batch.groups):
            for pos in g.output:
                total = total + out.logits[row, pos - 1, batch.input_ids[row, pos]]
        total.backward()
    finally:
        for p, flag in zip(model.parameters(), flags, strict=True):
            p.requires_grad_(flag)
    ref = np.zeros((len(batch), adapter.num_layers, batch.seq_len), dtype=np.float32)
    for layer in range(adapter.num_layers):
        h, grad = hidden[layer], hidden[layer].grad
        for row, g in enumerate(batch.groups):
            img = list(g.image)
            weights = torch.clamp(grad[row, img], min=0).mean(0)
            cam = torch.relu((h[row, img] * weights).sum(-1)).detach()
            if cam.max() > 0:
                cam = cam / cam.max()
            ref[row, layer, img] = cam.numpy()
    return ref


def test_cam_matches_direct_autograd(adapter) -> None:
    batch = adapter.build_batch(images(), PROMPTS, answers=ANSWERS)
    ref = reference_cam(adapter, batch)
    assert (ref > 0).sum() > 10, (
        "reference CAM is trivially zero; the comparison would prove nothing"
    )
    cam = llava_cam(adapter, batch)
    assert cam.shape == (2, adapter.num_layers, batch.seq_len)
    np.testing.assert_allclose(cam, ref, atol=2e-5)


def test_cam_is_normalised_on_the_image_and_leaves_parameters_alone(adapter) -> None:
    batch = adapter.build_batch(images(), PROMPTS, answers=ANSWERS)
    flags = [p.requires_grad for p in adapter.model.parameters()]
    cam = llava_cam(adapter, batch)
    assert all(p.grad is None for p in adapter.model.parameters())
    assert [p.requires_grad for p in adapter.model.parameters()] == flags
    for row, g in enumerate(batch.groups):
        outside = np.ones(batch.seq_len, bool)
        outside[list(g.image)] = False
        assert np.all(cam[row][:, outside] == 0)
        peaks = cam[row][:, list(g.image)].max(-1)
        assert np.all((np.abs(peaks - 1) < 1e-6) | (peaks == 0))


def test_smoothgrad_averages_noisy_copies(adapter) -> None:
    batch = adapter.build_batch(images()[:1], PROMPTS[:1], answers=ANSWERS[:1])
    plain = llava_cam(adapter, batch)
    np.testing.assert_allclose(
        llava_cam(adapter, batch, smooth_n=2, smooth_sigma=0.0), plain, atol=1e-6
    )
    noisy = llava_cam(adapter, batch, smooth_n=3, smooth_sigma=0.3, seed=1)
    assert not np.allclose(noisy, plain, atol=1e-3)
    assert noisy.min() >= 0 and noisy.max() <= 1 + 1e-6
    np.testing.assert_array_equal(
        noisy, llava_cam(adapter, batch, smooth_n=3, smooth_sigma=0.3, seed=1)
    )


def test_targets_are_read_where_the_answer_is_predicted(adapter) -> None:
    batch = adapter.build_batch(images(), PROMPTS, answers=[ANSWERS[0], []])
    targets = answer_targets(batch)
    g = batch.groups[0]
    assert [p for p, _ in targets[0]] == [g.last_prompt_position, *list(g.output)[:-1]]
    assert [t for _, t in targets[0]] == batch.input_ids[0, g.output.start :].tolist()
    assert targets[1] == [(batch.groups[1].last_prompt_position, None)]  # empty answer: top logit

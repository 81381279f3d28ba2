"""A model split over two devices gives the results of the unsplit model.

The second device is EMULATED: this machine has no GPU, so the second half of the tiny
LLaVA's decoder layers is placed on accelerate's "disk" offload device. Their weights sit on
`meta` and accelerate's `AlignDevicesHook` loads them (and moves the layer's inputs) for each
call, which is the same hook machinery `device_map="auto"` installs across GPUs. Code that
creates a tensor on the wrong device, or reads `.weight.device` of an offloaded module, fails
or diverges here. Capture (flow), truncation (naive and shared sweep) and CAM are compared.
Limit, stated plainly: the disk device *executes* on the CPU, so moving activations between
two real devices (cuda:0 -> cuda:1) is not exercised here; `bench/gpu_check.py` and a
multi-GPU `device_map="auto"` run are where that is checked.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cliffscope.engines.cam import llava_cam
from cliffscope.engines.capture import capture_flow
from cliffscope.engines.sweep import naive_sweep, shared_sweep
from cliffscope.models.loading import load_adapter
from tests.tiny_models import tiny_profile

pytestmark = pytest.mark.slow

PROMPTS = ["What is the colour?", "What is the colour of the shape in this image?"]
ANSWERS = ["red and blue", "yes"]
CPU_MODULES = [
    "model.vision_tower",
    "model.multi_modal_projector",
    "model.language_model.embed_tokens",
    "model.language_model.norm",
    "model.language_model.rotary_emb",
    "lm_head",
]


def split_map(num_layers: int) -> dict[str, str]:
    """First half of the decoder on the CPU, the rest on the emulated second device."""
    dm = dict.fromkeys(CPU_MODULES, "cpu")
    for i in range(num_layers):
        dm[f"model.language_model.layers.{i}"] = "cpu" if i < num_layers // 2 else "disk"
    return dm


@pytest.fixture(scope="module")
def pair(tiny_llava_path: Path, tmp_path_factory: pytest.TempPathFactory):
    plain = load_adapter(tiny_profile(tiny_llava_path, "llava"))
    offload = tmp_path_factory.mktemp("offload")
    profile = tiny_profile(
        tiny_llava_path,
        "llava",
        device_map=split_map(plain.num_layers),
        offload_folder=str(offload),
    )
    split = load_adapter(profile)
    images = [Image.new("RGB", (40, 30), (200, 20, 20)), Image.new("RGB", (64, 64), (20, 20, 200))]
    return plain, split, images


def test_the_split_is_real(pair) -> None:
    plain, split, _ = pair
    layers = split.decoder_layers()
    last = layers[-1]
    hooks = [getattr(m, "_hf_hook", None) for m in last.modules()]
    assert any(getattr(h, "offload", False) for h in hooks)  # accelerate loads them per call
    assert all(p.device.type == "meta" for p in last.parameters())
    assert all(p.device.type == "cpu" for p in layers[0].parameters())
    assert all(p.device.type == "cpu" for p in plain.decoder_layers()[-1].parameters())


def test_capture_split_equals_unsplit(pair) -> None:
    plain, split, images = pair
    out = []
    for adapter in (plain, split):
        batch = adapter.build_batch(images, PROMPTS, answers=ANSWERS)
        out.append(capture_flow(adapter, batch, "answer", "mean", map_rows=[0, 1]))
    a, b = out
    assert a.per_head.shape[0] == plain.num_layers
    np.testing.assert_allclose(b.per_head, a.per_head, atol=1e-5)
    np.testing.assert_allclose(b.density(), a.density(), atol=1e-5)
    for row in (0, 1):
        np.testing.assert_allclose(b.key_attention[row], a.key_attention[row], atol=1e-5)


@pytest.mark.parametrize("engine", ["shared", "naive"])
def test_sweep_split_equals_unsplit(pair, engine: str) -> None:
    plain, split, images = pair
    layers = list(range(plain.num_layers + 1))
    sweep = shared_sweep if engine == "shared" else naive_sweep
    a = sweep(plain, plain.build_batch(images, PROMPTS), layers, 3)
    b = sweep(split, split.build_batch(images, PROMPTS), layers, 3)
    assert b.answers == a.answers
    for k, logits in a.first_logits.items():
        torch.testing.assert_close(b.first_logits[k].cpu(), logits.cpu(), atol=1e-5, rtol=0)


def test_cam_split_equals_unsplit(pair) -> None:
    plain, split, images = pair
    cams = []
    for adapter in (plain, split):
        cams.append(llava_cam(adapter, adapter.build_batch(images, PROMPTS, answers=ANSWERS)))
    assert cams[0].shape[1] == plain.num_layers and np.ptp(cams[0]) > 0
    np.testing.assert_allclose(cams[1], cams[0], atol=1e-5)

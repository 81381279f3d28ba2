"""The shipped demo model: loads like a real checkpoint, needs its image, matches its manifest."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import numpy as np
import pytest

from cliffscope.demo import DEMO_DIR, demo_available, load_manifest
from cliffscope.demo.tokenizer import SYSTEM_PROMPT, conversation
from cliffscope.tasks.shapes import ShapesConfig, vqa_sample

pytestmark = pytest.mark.skipif(not demo_available(), reason="demo weights not built")

QUESTION = "What color is the circle?"


@pytest.fixture(scope="module")
def manifest() -> dict:
    return load_manifest()


@pytest.fixture(scope="module")
def processor():
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(DEMO_DIR)


@pytest.fixture(scope="module")
def model():
    import torch
    from transformers import LlavaForConditionalGeneration

    torch.set_num_threads(2)
    return LlavaForConditionalGeneration.from_pretrained(DEMO_DIR).eval()


def test_importing_the_demo_package_does_not_import_torch():
    code = "import sys, cliffscope.demo; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_weights_match_the_manifest_hash(manifest):
    digest = hashlib.sha256((DEMO_DIR / "model.safetensors").read_bytes()).hexdigest()
    assert digest == manifest["weights_sha256"]
    assert sum(p.stat().st_size for p in DEMO_DIR.iterdir()) < 10 * 2**20
    assert set(manifest["files"]) <= {p.name for p in DEMO_DIR.iterdir()}


def test_manifest_reports_a_model_that_needs_the_image(manifest):
    h = manifest["heldout"]
    assert h["accuracy"] >= 0.95
    assert h["accuracy_no_image"] <= h["chance"] + 0.15
    assert h["caption_cider"] > 1.0
    assert manifest["model"]["text_layers"] >= 4


def test_processor_expands_one_image_into_the_models_image_tokens(processor):
    from transformers import AutoConfig

    from cliffscope.tasks.registry import get_task

    config = AutoConfig.from_pretrained(DEMO_DIR)
    sample = get_task("shapes-vqa").get("shapes-000000")
    text = processor.apply_chat_template(
        conversation(sample.prompt), add_generation_prompt=True, tokenize=False
    )
    ids = processor(text=[text], images=[sample.image])["input_ids"][0]
    positions = [i for i, t in enumerate(ids) if t == config.image_token_id]
    assert len(positions) == config.image_seq_length == 16
    assert positions == list(range(positions[0], positions[0] + 16)), "image tokens not contiguous"

    tok = processor.tokenizer
    system = tok.convert_ids_to_tokens(ids[: positions[0]])
    instruction = tok.convert_ids_to_tokens(ids[positions[-1] + 1 :])
    assert system[0] == tok.bos_token and system[-2:] == ["USER", ":"]
    assert tok.convert_tokens_to_string(system[1:-2]).split()[:3] == SYSTEM_PROMPT.split()[:3]
    assert tok.unk_token not in system + instruction, "the task prompt has words the model lacks"
    assert instruction[:4] == ["What", "color", "is", "the"]
    assert instruction[-2:] == ["ASSISTANT", ":"]
    assert len(system) + len(instruction) >= 16, "image tokens should not dominate the prompt"


def test_custom_system_prompt_replaces_the_default(processor):
    text = processor.apply_chat_template(
        conversation(QUESTION, system="Answer briefly."), add_generation_prompt=True, tokenize=False
    )
    assert text == f"Answer briefly. USER: <image>\n{QUESTION} ASSISTANT:"


def test_training_normalisation_equals_the_processor(processor):
    from cliffscope.demo.data import PromptCache, SceneStream

    images = [vqa_sample(ShapesConfig(), i)["image"] for i in range(4)]
    expected = processor.image_processor(images, return_tensors="pt")["pixel_values"].numpy()
    stream = SceneStream(ShapesConfig(), processor, PromptCache(processor, images[0]))
    mine = stream.pixel_values(np.stack([np.asarray(im) for im in images])).numpy()
    assert np.abs(mine - expected).max() < 1e-5


@pytest.mark.slow
def test_shipped_weights_reach_the_manifest_accuracy(model, processor, manifest):
    from cliffscope.demo.evaluate import evaluate_task
    from cliffscope.tasks.registry import get_task

    h = manifest["heldout"]
    task = get_task(h["task"])
    with_image = evaluate_task(model, processor, task, range(100), with_image=True)
    assert with_image.score == pytest.approx(h["accuracy_first_100"], abs=0.02)
    assert with_image.score >= 0.95
    without = evaluate_task(model, processor, task, range(100), with_image=False)
    assert without.score == pytest.approx(h["accuracy_no_image_first_100"], abs=0.02)
    assert without.score <= h["chance"] + 0.15
    captions = evaluate_task(model, processor, get_task(h["caption_task"]), range(40))
    assert captions.score > 3.0, captions.predictions[:3]


@pytest.mark.slow
def test_shared_prefix_training_loss_equals_the_full_forward(model, processor):
    import torch

    from cliffscope.demo.data import PromptCache, SceneStream, collate
    from cliffscope.demo.train import shared_prefix_loss

    cfg = ShapesConfig()
    cache = PromptCache(processor, vqa_sample(cfg, 0)["image"])
    stream = SceneStream(cfg, processor, cache)
    examples, images = stream.batch(seed=0, step=0, batch=6, caption_share=0.5)
    batch = collate(examples, stream.pixel_values(images), processor.tokenizer.pad_token_id)
    assert len({len(e.prompt) + len(e.target) for e in examples}) > 1, "want padded rows"
    with torch.no_grad():
        full = model(**batch).loss
        shared = shared_prefix_loss(model, batch, cache.prefix_len)
    assert float(full) == pytest.approx(float(shared), rel=1e-5)


@pytest.mark.slow
def test_build_runs_end_to_end_with_few_steps(tmp_path):
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    from cliffscope.demo.build import TrainSettings, build_demo

    seen: list[str] = []
    settings = TrainSettings(
        vision_steps=2, vision_batch=8, batch_size=8, eval_vqa=6, eval_captions=3
    )
    m = build_demo(
        tmp_path, seed=3, steps=3, progress=lambda s, *_: seen.append(s), settings=settings
    )
    assert {"vision", "train", "eval"} <= set(seen)
    assert demo_available(tmp_path)
    on_disk = load_manifest(tmp_path)
    assert on_disk["seed"] == 3 and on_disk["steps"] == 3
    assert on_disk["weights_sha256"] == m.weights_sha256
    assert 0.0 <= on_disk["heldout"]["accuracy"] <= 1.0
    model = LlavaForConditionalGeneration.from_pretrained(tmp_path)
    assert model.config.text_config.num_hidden_layers == 4
    assert AutoProcessor.from_pretrained(tmp_path).chat_template is not None


@pytest.mark.slow
def test_build_is_a_pure_function_of_its_seed(tmp_path):
    """`demo build` must reproduce the shipped weights from the seed: same seed, same bytes."""
    from cliffscope.demo.build import TrainSettings, build_demo

    def build(name: str, seed: int) -> str:
        settings = TrainSettings(
            vision_steps=3, vision_batch=8, batch_size=8, eval_vqa=4, eval_captions=2
        )
        return build_demo(tmp_path / name, seed=seed, steps=4, settings=settings).weights_sha256

    first = build("a", 5)
    assert build("b", 5) == first
    assert build("c", 6) != first

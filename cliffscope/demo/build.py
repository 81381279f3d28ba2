"""Build the embedded demo model: a tiny real LLaVA-1.5 that must look at the image.

`build_demo` makes a `LlavaForConditionalGeneration` (small CLIP tower, 4-layer Llama, d=128,
16 image tokens) and trains it on CPU, offline and seeded: stage 1 pretrains the CLIP tower
(`vision.py`), stage 2 trains projector and language model on colour questions and captions
of shapes scenes (`train.py`). Before saving it measures held-out accuracy with and without
the image, so a model that learned a shortcut (which colours are present, not which belongs
to which shape) shows up in the manifest instead of producing misleading cliffs later.

Run it as ``python -m cliffscope.demo.build --out DIR`` or through ``cliffscope demo build``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cliffscope.demo.data import TRAIN_INDEX_OFFSET, PromptCache, SceneStream
from cliffscope.demo.tokenizer import CHAT_TEMPLATE, SYSTEM_PROMPT, build_processor
from cliffscope.demo.train import Progress, TrainSettings, train_llava
from cliffscope.demo.vision import VISION_INDEX_OFFSET, pretrain_vision
from cliffscope.tasks.registry import get_task
from cliffscope.tasks.shapes import make_scene, render
from cliffscope.tasks.spec import render_prompt

IMAGE_SIZE = 64
PATCH_SIZE = 16
NUM_THREADS = 2

__all__ = ["Manifest", "Progress", "TrainSettings", "build_demo", "main", "print_progress"]


@dataclass
class Manifest:
    """What `manifest.json` records about a build (and what the shipped-weights test checks)."""

    seed: int
    steps: int
    settings: dict[str, Any]
    model: dict[str, Any]
    prompt: dict[str, Any]
    heldout: dict[str, Any]
    timings_s: dict[str, float]
    versions: dict[str, str]
    weights_sha256: str = ""
    files: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"


def make_config(
    vocab_size: int, settings: Any, special: dict[str, int], heads: int = 4, mlp_ratio: int = 2
) -> Any:
    """LLaVA-1.5 layout in miniature: CLIP tower (penultimate layer, CLS dropped) + Llama."""
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig

    vision = CLIPVisionConfig(
        hidden_size=settings.vision_hidden,
        intermediate_size=4 * settings.vision_hidden,
        num_hidden_layers=settings.vision_layers,
        num_attention_heads=4,
        image_size=IMAGE_SIZE,
        patch_size=PATCH_SIZE,
    )
    text = LlamaConfig(
        hidden_size=settings.hidden,
        intermediate_size=mlp_ratio * settings.hidden,
        num_hidden_layers=settings.num_layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        vocab_size=vocab_size,
        max_position_embeddings=256,
        bos_token_id=special["bos"],
        eos_token_id=special["eos"],
        pad_token_id=special["pad"],
        tie_word_embeddings=False,
    )
    return LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_id=special["image"],
        image_seq_length=(IMAGE_SIZE // PATCH_SIZE) ** 2,
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
        projector_hidden_act="gelu",
    )


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def versions() -> dict[str, str]:
    """What the weights' bits depend on besides the seed and the recipe: the releases, and
    the CPU kernels torch dispatches to (an AVX-512 machine rounds differently from an AVX2
    one, and a long build amplifies that; docs/demo.md)."""
    import tokenizers
    import torch
    import transformers

    from cliffscope import __version__

    return {
        "cliffscope": __version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "python": platform.python_version(),
        "cpu": f"{torch.backends.cpu.get_cpu_capability()} {platform.machine()}",
    }


def _mean(values: list[float]) -> float:
    return sum(values) / max(1, len(values))


def _quiet(*_: Any) -> None:
    return None


@dataclass
class Setup:
    """What every demo build starts from: the tasks, the processor and the prompt ids."""

    vqa_task: Any
    caption_task: Any
    processor: Any
    cache: PromptCache
    caption_prompt: str
    special: dict[str, int]

    @property
    def task_config(self) -> Any:
        return self.vqa_task.config


def prepare() -> Setup:
    """Tasks, processor and prompt cache; sets torch's threads and transformers' verbosity."""
    import torch
    import transformers

    torch.set_num_threads(NUM_THREADS)
    transformers.logging.set_verbosity_error()
    vqa_task, caption_task = get_task("shapes-vqa"), get_task("shapes-caption")
    task_cfg = vqa_task.config
    if task_cfg.image_size != IMAGE_SIZE or caption_task.config != task_cfg:
        raise ValueError("shapes-vqa and shapes-caption must draw the same 64 px scenes")
    templates = [vqa_task.spec.prompt_template, caption_task.spec.prompt_template]
    processor = build_processor(IMAGE_SIZE, PATCH_SIZE, extra_texts=templates)
    tok = processor.tokenizer
    special = {
        "bos": tok.bos_token_id,
        "eos": tok.eos_token_id,
        "pad": tok.pad_token_id,
        "image": processor.image_token_id,
    }
    return Setup(
        vqa_task=vqa_task,
        caption_task=caption_task,
        processor=processor,
        cache=PromptCache(processor, render(make_scene(task_cfg, 0), IMAGE_SIZE)),
        caption_prompt=render_prompt(caption_task.spec.prompt_template, "", None, ""),
        special=special,
    )


def new_model(setup: Setup, config: Any, seed: int) -> Any:
    """A freshly initialised `LlavaForConditionalGeneration` (torch seeded with ``seed``)."""
    import torch
    from transformers import LlavaForConditionalGeneration

    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config)
    for key, value in (("pad", "pad_token_id"), ("eos", "eos_token_id"), ("bos", "bos_token_id")):
        setattr(model.generation_config, value, setup.special[key])
    return model


def heldout(
    model: Any, setup: Setup, eval_vqa: int, eval_captions: int, report: Progress
) -> dict[str, Any]:
    """Held-out accuracy with and without the image and caption CIDEr (the manifest's figures)."""
    from cliffscope.demo.evaluate import NO_IMAGE_METHOD, evaluate_task

    vqa_task, caption_task, processor = setup.vqa_task, setup.caption_task, setup.processor
    held = range(eval_vqa)
    report("eval", 0, 3, {})
    with_img = evaluate_task(model, processor, vqa_task, held, with_image=True)
    report("eval", 1, 3, {"accuracy": with_img.score})
    no_img = evaluate_task(model, processor, vqa_task, held, with_image=False)
    report("eval", 2, 3, {"accuracy_no_image": no_img.score})
    caps = evaluate_task(model, processor, caption_task, range(eval_captions))
    report("eval", 3, 3, {"cider": caps.score})
    return {
        "task_config": asdict(setup.task_config),
        "vqa_ids": [0, eval_vqa],
        "task": "shapes-vqa",
        "metric": vqa_task.spec.metric,
        "accuracy": with_img.score,
        "accuracy_no_image": no_img.score,
        "accuracy_first_100": _mean(with_img.per_sample[:100]),
        "accuracy_no_image_first_100": _mean(no_img.per_sample[:100]),
        "no_image_method": NO_IMAGE_METHOD,
        "chance": 1.0 / len(setup.task_config.colors),
        "caption_ids": [0, eval_captions],
        "caption_task": "shapes-caption",
        "caption_cider": caps.score,
        "caption_metric": f"{caption_task.spec.metric} (cliffscope.metrics, CIDEr-D x10)",
        "caption_examples": [
            {"prediction": p, "references": r}
            for p, r in zip(caps.predictions[:3], caps.references[:3], strict=True)
        ],
    }


def describe(model: Any, setup: Setup, settings: Any, patch_acc: float) -> dict[str, Any]:
    """The manifest's `model` and `prompt` sections."""
    cache, template = setup.cache, setup.vqa_task.spec.prompt_template
    question = render_prompt(template, "What color is the circle?", None, "")
    text = model.config.text_config
    model_info = {
        "class": "LlavaForConditionalGeneration",
        "text_layers": settings.num_layers,
        "hidden_size": settings.hidden,
        "attention_heads": text.num_attention_heads,
        "image_tokens": model.config.image_seq_length,
        "image_token_id": model.config.image_token_id,
        "image_size": IMAGE_SIZE,
        "patch_size": PATCH_SIZE,
        "vision_feature_layer": model.config.vision_feature_layer,
        "vision_frozen_after_pretraining": True,
        "vision_patch_accuracy": patch_acc,
        "vocab_size": len(setup.processor.tokenizer),
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    prompt = {
        "system_prompt": SYSTEM_PROMPT,
        "chat_template": CHAT_TEMPLATE,
        "vqa_template": template,
        "caption_prompt": setup.caption_prompt,
        "vqa_prompt_tokens": len(cache.prompt(question)),
        "system_tokens": cache.prefix_len,
    }
    return {"model": model_info, "prompt": prompt}


def save(out: Path, model: Any, setup: Setup, manifest: Manifest) -> Manifest:
    """Weights, processor and `manifest.json` (with the weights' hash and the file list)."""
    model.save_pretrained(out, safe_serialization=True)
    setup.processor.save_pretrained(out)
    manifest.versions = versions()
    manifest.weights_sha256 = sha256_file(out / "model.safetensors")
    for path in out.iterdir():
        os.chmod(path, 0o644)  # save_pretrained may leave 0600; the package must be readable
    manifest.files = sorted({p.name for p in out.iterdir()} | {"manifest.json"})
    (out / "manifest.json").write_text(manifest.to_json())
    return manifest


def build_demo(
    out_dir: str | Path,
    seed: int = 0,
    steps: int | None = None,
    progress: Progress | None = None,
    settings: TrainSettings | None = None,
) -> Manifest:
    """Train the demo model from ``seed`` and write weights, processor and `manifest.json`.

    ``steps`` overrides the language-model training steps (the vision stage keeps
    ``settings.vision_steps``). ``progress(stage, done, total, info)`` is called per step.
    """
    settings = settings or TrainSettings()
    settings.seed = seed
    if steps is not None:
        settings.steps = steps
    report = progress or _quiet
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    setup = prepare()
    task_cfg = setup.task_config
    stream = SceneStream(
        task_cfg,
        setup.processor,
        setup.cache,
        setup.vqa_task.spec.prompt_template,
        setup.caption_prompt,
    )
    tok = setup.processor.tokenizer
    model = new_model(setup, make_config(len(tok), settings, setup.special), seed)
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    tower = model.model.vision_tower
    patch_acc = pretrain_vision(
        tower, task_cfg, stream.pixel_values, settings.vision_steps, seed,
        batch=settings.vision_batch, lr=settings.vision_lr, progress=report,
    )  # fmt: skip
    tower.requires_grad_(False)
    timings["vision"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    final_loss = train_llava(model, stream, settings, setup.special["pad"], report)
    timings["train"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    held = heldout(model, setup, settings.eval_vqa, settings.eval_captions, report)
    timings["eval"] = time.perf_counter() - t0
    held.update(
        final_train_loss=final_loss,
        train_ids_from=TRAIN_INDEX_OFFSET,
        vision_ids_from=VISION_INDEX_OFFSET,
    )
    manifest = Manifest(
        seed=seed,
        steps=settings.steps,
        settings=asdict(settings),
        **describe(model, setup, settings, patch_acc),
        heldout=held,
        timings_s={k: round(v, 1) for k, v in timings.items()},
        versions={},
    )
    return save(out, model, setup, manifest)


def print_progress(stage: str, done: int, total: int, info: dict[str, Any]) -> None:
    """Plain-text progress for ``python -m cliffscope.demo.build`` (no tqdm, no rich)."""
    if stage != "eval" and done % 50 and done != total:
        return
    extra = " ".join(f"{k}={v:.4f}" for k, v in info.items())
    print(f"[{stage}] {done}/{total} {extra}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """``python -m cliffscope.demo.build --out DIR [--seed N] [--steps N] [--layers N]``."""
    parser = argparse.ArgumentParser(description="Train the cliffscope demo model.")
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=None, help="language-model steps")
    parser.add_argument("--layers", type=int, default=None, help="decoder layers")
    args = parser.parse_args(argv)
    settings = TrainSettings()
    if args.layers:
        settings.num_layers = args.layers
    t0 = time.perf_counter()
    m = build_demo(args.out, args.seed, args.steps, print_progress, settings)
    h = m.heldout
    print(
        f"built in {time.perf_counter() - t0:.0f}s: accuracy {h['accuracy']:.3f}, "
        f"without image {h['accuracy_no_image']:.3f} (chance {h['chance']:.2f}), "
        f"caption CIDEr {h['caption_cider']:.2f} -> {args.out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

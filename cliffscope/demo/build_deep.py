"""Build the deep demo model: LLaVA's recipe in miniature, for a demo that shows a cliff.

The 4-layer demo (`build.py`) is trained from scratch on one task; this one follows
LLaVA-1.5's order (`recipe.py`): a pretrained, frozen CLIP tower, a language model pre-trained
on text behind a long system prompt, projector alignment, then instruction tuning on a
mixture of easy and harder shapes scenes. It uses the same tokenizer, chat template and
processor as the 4-layer demo, and the same held-out checks (`build.heldout`).

Run it as ``python -m cliffscope.demo.build_deep --out DIR [--set key=value ...]`` or
through ``cliffscope demo build --deep``.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from cliffscope.demo.build import (
    Manifest,
    describe,
    heldout,
    make_config,
    new_model,
    prepare,
    print_progress,
    save,
)
from cliffscope.demo.data import TRAIN_INDEX_OFFSET, SceneStream
from cliffscope.demo.deep_data import TEXT_INDEX_OFFSET, MixedStream, TextCorpus
from cliffscope.demo.recipe import STAGE_FIELDS, STAGES, DeepSettings, train_images, train_text
from cliffscope.demo.train import Progress
from cliffscope.demo.vision import VISION_INDEX_OFFSET, pretrain_vision
from cliffscope.tasks.shapes import PALETTE, QUESTION_TYPES, SHAPES, ShapesConfig

#: The harder scenes of the training mixture: three objects out of every shape and colour,
#: two distractors, colour, shape and side questions. The held-out set stays `shapes-vqa`.
HARD_SCENES = ShapesConfig(
    n_shapes=3,
    distractors=2,
    shapes=SHAPES,
    colors=tuple(PALETTE),
    question_types=QUESTION_TYPES,
)


def _quiet(*_: Any) -> None:
    return None


def run_cached(
    stage: str,
    run: Callable[[], float],
    model: Any,
    settings: DeepSettings,
    stage_cache: Path | None,
) -> tuple[float, float]:
    """Run one stage -> (its figure, seconds); with ``stage_cache``, reuse a stored result.

    A stored result is the model's state after the stage, keyed by every setting the stages
    up to it read and by the demo package's source, so exploring instruction-tuning knobs does
    not retrain the tower and the text model each time (and a code change never reuses).
    """
    import torch

    path = None
    if stage_cache is not None:
        path = Path(stage_cache) / f"{stage}-{stage_key(settings, stage)}.pt"
        if path.is_file():
            stored = torch.load(path, weights_only=True)
            model.load_state_dict(stored["model"])
            return float(stored["value"]), float(stored["seconds"])
    t0 = time.perf_counter()
    value = run()
    seconds = time.perf_counter() - t0
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {"model": model.state_dict(), "value": value, "seconds": seconds}
        torch.save(state, path)
    return value, seconds


def stage_key(settings: DeepSettings, stage: str) -> str:
    """Hash of the settings the stages up to ``stage`` read and of the demo package's code."""
    names = [n for s in STAGES[: STAGES.index(stage) + 1] for n in STAGE_FIELDS[s]]
    values = {n: getattr(settings, n) for n in names}
    h = hashlib.sha256(json.dumps(values, sort_keys=True).encode())
    for source in sorted(Path(__file__).resolve().parent.glob("*.py")):
        h.update(source.read_bytes())
    return h.hexdigest()[:16]


def build_deep(
    out_dir: str | Path,
    seed: int = 0,
    progress: Progress | None = None,
    settings: DeepSettings | None = None,
    stage_cache: Path | None = None,
) -> Manifest:
    """Train the deep demo from ``seed``; write weights, processor and `manifest.json`.

    ``stage_cache`` (recipe exploration only) stores and reuses each stage's result.
    """
    settings = dataclasses.replace(settings or DeepSettings(), seed=seed)
    report = progress or _quiet
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    setup = prepare()
    import torch

    torch.set_num_threads(settings.threads)
    easy = setup.task_config
    if easy.image_size != HARD_SCENES.image_size:
        raise ValueError("shapes-vqa scenes and the harder training scenes differ in size")
    template = setup.vqa_task.spec.prompt_template
    normalize = SceneStream(easy, setup.processor, setup.cache).pixel_values
    mixture = [easy, HARD_SCENES]
    weights = [1.0 - settings.hard_share, settings.hard_share]
    stream = MixedStream(mixture, weights, setup.cache, template, setup.caption_prompt)
    corpus = TextCorpus(setup.cache, mixture, settings.text_questions)
    config = make_config(
        len(setup.processor.tokenizer), settings, setup.special, settings.heads, settings.mlp_ratio
    )
    model = new_model(setup, config, seed)
    pad = setup.special["pad"]
    timings: dict[str, float] = {}

    def vision() -> float:
        tower = model.model.vision_tower
        acc = pretrain_vision(
            tower, HARD_SCENES, normalize, settings.vision_steps, seed,
            batch=settings.vision_batch, lr=settings.vision_lr, progress=report,
        )  # fmt: skip
        tower.requires_grad_(False)
        return acc

    stages = {
        "vision": vision,
        "text": lambda: train_text(model, corpus, settings, pad, report),
        "align": lambda: train_images("align", model, stream, normalize, settings, pad, report),
        "instruct": lambda: train_images(
            "instruct", model, stream, normalize, settings, pad, report
        ),
    }
    results: dict[str, float] = {}
    for name, run in stages.items():
        torch.manual_seed(seed)  # no stage depends on what an earlier one drew
        results[name], timings[name] = run_cached(name, run, model, settings, stage_cache)
    model.requires_grad_(False)
    patch_acc = results.pop("vision")
    losses = results

    t0 = time.perf_counter()
    held = heldout(model, setup, settings.eval_vqa, settings.eval_captions, report)
    timings["eval"] = time.perf_counter() - t0
    held.update(
        final_train_loss=losses["instruct"],
        stage_losses=losses,
        train_ids_from=TRAIN_INDEX_OFFSET,
        text_ids_from=TEXT_INDEX_OFFSET,
        vision_ids_from=VISION_INDEX_OFFSET,
        training_scenes={"easy": asdict(easy), "hard": asdict(HARD_SCENES)},
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


def parse_overrides(pairs: list[str]) -> DeepSettings:
    """``key=value`` pairs -> `DeepSettings` (values parsed with the field's type)."""
    fields = {f.name: f for f in dataclasses.fields(DeepSettings)}
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or key not in fields:
            raise SystemExit(f"--set {pair!r}: use key=value with a key of {sorted(fields)}")
        kind = type(getattr(DeepSettings(), key))
        values[key] = kind(raw)
    return DeepSettings(**values)


def main(argv: list[str] | None = None) -> int:
    """``python -m cliffscope.demo.build_deep --out DIR [--seed N] [--set key=value ...]``."""
    parser = argparse.ArgumentParser(description="Train the cliffscope deep demo model.")
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument(
        "--stage-cache", type=Path, default=None, help="reuse stage results stored here"
    )
    args = parser.parse_args(argv)
    settings = parse_overrides(args.set)
    t0 = time.perf_counter()
    m = build_deep(args.out, args.seed, print_progress, settings, args.stage_cache)
    h = m.heldout
    print(
        f"built in {time.perf_counter() - t0:.0f}s: accuracy {h['accuracy']:.3f}, "
        f"without image {h['accuracy_no_image']:.3f} (chance {h['chance']:.2f}), "
        f"caption CIDEr {h['caption_cider']:.2f} -> {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: the demo build's shared-prefix training step versus the plain full forward.

Every demo training prompt starts with the same BOS + system prompt + ``USER:`` (32 of ~57
tokens). `cliffscope.demo.train.shared_prefix_loss` runs that prefix once per batch and hands
its keys/values to every row as a cache; the naive step runs `model(**batch).loss` over the
whole sequence. In one run, interleaved rep by rep, this times forward + backward + AdamW
step for both on the demo architecture (4 layers, d=128, 16 image tokens, batch 32, frozen
CLIP tower as in the build), on the same batches, and checks that the two losses agree.

    PYTHONPATH=. python bench/demo_train.py [--steps 30] [--batch 32] [--threads 2] [--json out]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="timed steps per mode")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import transformers
    from transformers import LlavaForConditionalGeneration

    from cliffscope.demo.build import IMAGE_SIZE, PATCH_SIZE, make_config
    from cliffscope.demo.data import PromptCache, SceneStream, collate
    from cliffscope.demo.tokenizer import build_processor
    from cliffscope.demo.train import TrainSettings, shared_prefix_loss
    from cliffscope.tasks.registry import get_task
    from cliffscope.tasks.shapes import make_scene, render

    torch.set_num_threads(args.threads)
    transformers.logging.set_verbosity_error()
    settings = TrainSettings(num_layers=args.layers, batch_size=args.batch)
    vqa, caption = get_task("shapes-vqa"), get_task("shapes-caption")
    processor = build_processor(
        IMAGE_SIZE, PATCH_SIZE, extra_texts=[vqa.spec.prompt_template, caption.spec.prompt_template]
    )
    tok = processor.tokenizer
    cache = PromptCache(processor, render(make_scene(vqa.config, 0), IMAGE_SIZE))
    stream = SceneStream(vqa.config, processor, cache, vqa.spec.prompt_template)
    special = {
        "bos": tok.bos_token_id,
        "eos": tok.eos_token_id,
        "pad": tok.pad_token_id,
        "image": processor.image_token_id,
    }
    torch.manual_seed(0)
    model = LlavaForConditionalGeneration(make_config(len(tok), settings, special))
    model.model.vision_tower.requires_grad_(False)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)

    def step(mode: str, batch: dict) -> tuple[float, float]:
        t0 = time.perf_counter()
        if mode == "shared":
            loss = shared_prefix_loss(model, batch, cache.prefix_len)
        else:
            loss = model(**batch).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return time.perf_counter() - t0, float(loss.detach())

    batches = []
    for i in range(args.steps + 3):
        examples, images = stream.batch(0, i, args.batch, settings.caption_share)
        batches.append(collate(examples, stream.pixel_values(images), special["pad"]))
    with torch.no_grad():  # the two losses on the same weights and batch
        full = float(model(**batches[0]).loss)
        shared = float(shared_prefix_loss(model, batches[0], cache.prefix_len))
    for batch in batches[:3]:  # warm-up, both paths
        step("naive", batch)
        step("shared", batch)
    times: dict[str, list[float]] = {"naive": [], "shared": []}
    for batch in batches[3:]:
        for mode in ("naive", "shared"):
            times[mode].append(step(mode, batch)[0])
    seq = int(batches[0]["input_ids"].shape[1])
    report = {
        "config": {
            "layers": args.layers,
            "hidden": settings.hidden,
            "batch": args.batch,
            "threads": args.threads,
            "steps": args.steps,
            "prefix_tokens": cache.prefix_len,
            "sequence_tokens": seq,
            "torch": torch.__version__,
            "transformers": transformers.__version__,
        },
        "loss_full": full,
        "loss_shared": shared,
        "median_ms": {m: 1000 * statistics.median(v) for m, v in times.items()},
        "min_ms": {m: 1000 * min(v) for m, v in times.items()},
    }
    report["speedup_median"] = report["median_ms"]["naive"] / report["median_ms"]["shared"]
    report["speedup_min"] = report["min_ms"]["naive"] / report["min_ms"]["shared"]
    print(json.dumps(report["config"]))
    print(f"loss on the same batch: full {full:.6f}  shared prefix {shared:.6f}")
    print("| step | median ms | min ms |")
    print("|---|---|---|")
    for mode in ("naive", "shared"):
        print(f"| {mode} | {report['median_ms'][mode]:.1f} | {report['min_ms'][mode]:.1f} |")
    print(
        f"shared-prefix speed-up: {report['speedup_median']:.2f}x median, "
        f"{report['speedup_min']:.2f}x min"
    )
    if abs(full - shared) > 1e-4 * max(1.0, abs(full)):
        raise SystemExit("the shared-prefix loss differs from the full forward's")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()

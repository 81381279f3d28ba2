"""GPU check: analysis and sweep on a random-weight model with the LLaVA-1.5-7B architecture.

The real llava-1.5-7b dimensions (CLIP ViT-L/14-336 tower: hidden 1024, 24 layers, 16 heads,
336 px, patch 14 -> 576 image tokens; Llama-2-7B decoder: hidden 4096, 32 layers, 32 heads,
intermediate 11008, vocabulary 32064) are built in memory, in bf16, straight on the device
(random weights: no download). The prompts are real (word tokenizer, LLaVA processor and chat
template), ~40 text tokens each. It checks and measures:

1. truncating at k = L changes nothing: logits equal the untouched forward, bit for bit;
2. flow capture vs the plain teacher-forced forward: time per batch, samples/s, peak memory;
3. the prefix-shared sweep vs the naive one (one run per k) over all L + 1 points: time,
   peak memory, and whether the greedy answers agree.

EOS is disabled so every answer is exactly `--new-tokens` long. Usage (from the repo root):

    PYTHONPATH=. python bench/gpu_check.py [--batch 4] [--new-tokens 8] [--json out.json]
    PYTHONPATH=. python bench/gpu_check.py --device cpu --small    # smoke test, tiny dims
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from PIL import Image

PROMPT = (
    "What is the colour of the shape in this image ? Describe the picture please , one word "
    "answer and a brief answer , how many are there , left or right , top or bottom ?"
)
LLAVA_7B = {"vision": (1024, 4096, 24, 16, 336), "text": (4096, 11008, 32, 32, 32064)}
SMALL = {"vision": (32, 64, 2, 2, 56), "text": (64, 176, 4, 2, 32064)}


def build(dims: dict[str, tuple[int, ...]], device: str, dtype: torch.dtype, tmp: Path) -> Any:
    """The adapter around an in-memory random-weight LLaVA of these dimensions."""
    from transformers import (
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    from cliffscope.models.llava import LlavaAdapter
    from cliffscope.profiles import Profile
    from tests.tiny_models import clip_image_processor, llava_tokenizer
    from tests.tiny_tokenizers import LLAVA_TEMPLATE

    tok = llava_tokenizer()
    v_hidden, v_inter, v_layers, v_heads, image = dims["vision"]
    t_hidden, t_inter, t_layers, t_heads, vocab = dims["text"]
    vision = CLIPVisionConfig(
        hidden_size=v_hidden, intermediate_size=v_inter, num_hidden_layers=v_layers,
        num_attention_heads=v_heads, image_size=image, patch_size=14, projection_dim=768,
    )  # fmt: skip
    text = LlamaConfig(
        vocab_size=vocab, hidden_size=t_hidden, intermediate_size=t_inter,
        num_hidden_layers=t_layers, num_attention_heads=t_heads, num_key_value_heads=t_heads,
        max_position_embeddings=4096, rms_norm_eps=1e-5, pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
    )  # fmt: skip
    config = LlavaConfig(
        vision_config=vision, text_config=text, image_token_id=tok.convert_tokens_to_ids("<image>"),
        vision_feature_select_strategy="default", vision_feature_layer=-2,
        projector_hidden_act="gelu",
    )  # fmt: skip
    config._attn_implementation = "sdpa"
    processor = LlavaProcessor(
        image_processor=clip_image_processor(image),
        tokenizer=tok, patch_size=14, vision_feature_select_strategy="default",
        num_additional_image_tokens=1, chat_template=LLAVA_TEMPLATE,
    )  # fmt: skip
    processor.save_pretrained(tmp)  # the profile needs a model folder; weights stay in memory
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = LlavaForConditionalGeneration(config).eval()
    finally:
        torch.set_default_dtype(previous)
    model.generation_config.eos_token_id = None  # answers run to --new-tokens
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.do_sample = False
    profile = Profile(
        name="gpu-check", family="llava", model=str(tmp), dtype=str(dtype).split(".")[-1],
        device_map=None, attn_implementation="sdpa", batch_size=4, max_new_tokens=8,
    )  # fmt: skip
    adapter = LlavaAdapter(model, processor, profile)
    adapter.policy = replace(adapter.policy, stop_ids=())  # no stop token at all
    return adapter


def measure(fn: Callable[[], Any], device: str, repeats: int) -> tuple[float, float, Any]:
    """(best seconds, peak GiB allocated, last output) of `fn` after one warm-up call."""
    cuda = device.startswith("cuda")
    out = fn()
    best = float("inf")
    peak = 0.0
    for _ in range(repeats):
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        out = fn()
        if cuda:
            torch.cuda.synchronize()
            peak = max(peak, torch.cuda.max_memory_allocated() / 2**30)
        best = min(best, time.perf_counter() - start)
    return best, peak, out


def run(args: argparse.Namespace) -> dict[str, Any]:
    from cliffscope.engines.capture import capture_flow
    from cliffscope.engines.sweep import BASE, naive_sweep, shared_sweep
    from cliffscope.engines.truncation import truncate

    dims = SMALL if args.small else LLAVA_7B
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[args.dtype]
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        adapter = build(dims, args.device, dtype, Path(tmp))
        built_s = time.perf_counter() - start
    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30)]
    images = [Image.new("RGB", (400, 300), colours[i % 4]) for i in range(args.batch)]
    batch = adapter.build_batch(images, [PROMPT] * args.batch)
    model, num_layers = adapter.model, adapter.num_layers
    report: dict[str, Any] = {
        "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else args.device,
        "dtype": args.dtype,
        "num_layers": num_layers,
        "parameters_b": round(sum(p.numel() for p in model.parameters()) / 1e9, 3),
        "batch": args.batch,
        "seq_len": batch.seq_len,
        "image_tokens": len(batch.groups[0].image),
        "build_s": round(built_s, 1),
    }

    # 1. k = L is the baseline, exactly
    positions = adapter.position_ids(batch)
    with torch.inference_mode():
        plain = model(**batch.inputs, position_ids=positions, logits_to_keep=1).logits
        adapter.reset_state()
        with truncate(adapter, num_layers, batch):
            at_l = model(**batch.inputs, position_ids=positions, logits_to_keep=1).logits
        adapter.reset_state()
    report["k_eq_L_max_abs_diff"] = float((plain.float() - at_l.float()).abs().max())
    report["k_eq_L_equal"] = bool(torch.equal(plain, at_l))

    # 2. flow capture vs the plain teacher-forced forward
    answers = [[tok] * args.new_tokens for tok in plain[:, -1].argmax(-1).tolist()]
    forced = adapter.build_batch(images, [PROMPT] * args.batch, answers=answers)

    def forward() -> Any:
        with torch.inference_mode():
            return model(**forced.inputs, use_cache=False, logits_to_keep=1)

    def capture() -> Any:
        return capture_flow(adapter, forced, "answer", "mean")

    for name, fn in (("forward", forward), ("capture", capture)):
        seconds, peak, _ = measure(fn, args.device, args.repeats)
        report[f"{name}_s"] = round(seconds, 4)
        report[f"{name}_samples_per_s"] = round(args.batch / seconds, 2)
        report[f"{name}_peak_gib"] = round(peak, 2)

    # 3. shared vs naive sweep over all L + 1 points
    layers = list(range(num_layers + 1))
    outs = {}
    for name, fn in (("shared", shared_sweep), ("naive", naive_sweep)):

        def sweep(fn: Any = fn) -> Any:
            with torch.inference_mode():
                return fn(adapter, batch, layers, args.new_tokens)

        seconds, peak, outs[name] = measure(sweep, args.device, 1)
        report[f"sweep_{name}_s"] = round(seconds, 3)
        report[f"sweep_{name}_peak_gib"] = round(peak, 2)
    report["sweep_points"] = len(layers)
    report["sweep_speedup"] = round(report["sweep_naive_s"] / report["sweep_shared_s"], 2)
    shared, naive = outs["shared"].answers, outs["naive"].answers
    same = sum(shared[k][r] == naive[k][r] for k in naive for r in range(args.batch))
    report["sweep_answers_agree"] = f"{same}/{len(naive) * args.batch}"
    report["sweep_baseline_agree"] = shared[BASE] == naive[BASE]
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", choices=["bf16", "fp16", "fp32"], default=None)
    parser.add_argument("--small", action="store_true", help="tiny dims (smoke test)")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--new-tokens", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args(argv)
    if args.dtype is None:
        args.dtype = "bf16" if args.device.startswith("cuda") else "fp32"
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device: use --device cpu --small for a smoke test", file=sys.stderr)
        return 2
    report = run(args)
    for key, value in report.items():
        print(f"{key:24} {value}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    ok = report["k_eq_L_equal"] and report["sweep_baseline_agree"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: prefix-shared truncation sweep versus one run per k, and truncated latency.

A random-weight LLaVA-layout model with 32 decoder layers, 576 image tokens (336 px / patch 14)
and ~40 text tokens per prompt is built offline; then, in one run:

1. single-token answers: `shared_sweep` vs `naive_sweep` over all 33 points k = 0..32;
2. generated answers (EOS disabled, so every answer is exactly N tokens): the same;
3. the latency of one truncated forward at each k against the untouched forward.

The shared and naive answers are compared (they must be identical). Usage:

    PYTHONPATH=. python bench/sweep.py [--hidden 128] [--batch 4] [--new-tokens 8] [--json out]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import torch
from PIL import Image

_VOCABULARY = (
    "what is the colour of the shape in this image describe answer a an one word red green "
    "blue circle square left right top bottom how many are there picture please brief and or "
    "helpful assistant gives to question"
)
WORDS = tuple(_VOCABULARY.split())
TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] != 'system' %}{{ message['role'].upper() + ': '}}{% endif %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}"
    "{{ '<image>\n' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{{ content['text'] + ' '}}{% endfor %}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)
#: Like LLaVA-1.5's layout: a system sentence before the image, the question after it.
SYSTEM = "A helpful assistant gives a brief answer to the question and the picture ."
PROMPT = "What is the colour of the shape in the picture on the left ? Answer in one word ."


def build_model(path: Path, hidden: int, layers: int) -> Path:
    """Random-weight LLaVA-1.5 layout: tiny CLIP tower (576 patches), Llama decoder."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        PreTrainedTokenizerFast,
    )

    specials = ["<unk>", "<s>", "</s>", "<pad>", "<image>"]
    vocab = {t: i for i, t in enumerate([*specials, "USER", "ASSISTANT", ":", "?", ".", "\n"])}
    for word in [*WORDS, *(w.capitalize() for w in WORDS)]:
        vocab.setdefault(word, len(vocab))
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()]
    )
    core.add_special_tokens(specials)
    core.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", vocab["<s>"])]
    )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core, unk_token="<unk>", pad_token="<pad>", eos_token="</s>",
        bos_token="<s>", image_token="<image>",
    )  # fmt: skip
    vision = CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
        image_size=336, patch_size=14, projection_dim=32,
    )  # fmt: skip
    text = LlamaConfig(
        vocab_size=len(vocab), hidden_size=hidden, intermediate_size=hidden * 11 // 4,
        num_hidden_layers=layers, num_attention_heads=max(1, hidden // 32),
        num_key_value_heads=max(1, hidden // 32), max_position_embeddings=2048,
        pad_token_id=vocab["<pad>"], bos_token_id=vocab["<s>"], eos_token_id=vocab["</s>"],
    )  # fmt: skip
    config = LlavaConfig(
        vision_config=vision, text_config=text, image_token_id=vocab["<image>"],
        vision_feature_select_strategy="default", vision_feature_layer=-1,
    )  # fmt: skip
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessor(
            size={"shortest_edge": 336}, crop_size={"height": 336, "width": 336}
        ),
        tokenizer=tok, patch_size=14, vision_feature_select_strategy="default",
        num_additional_image_tokens=1, chat_template=TEMPLATE,
    )  # fmt: skip
    torch.manual_seed(0)
    model = LlavaForConditionalGeneration(config).eval()
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


def load(path: Path, attn: str) -> Any:
    from cliffscope.models.loading import load_adapter
    from cliffscope.profiles import Profile

    profile = Profile(
        name="bench", family="llava", model=str(path), dtype="float32", device_map=None,
        attn_implementation=attn, system_prompt=SYSTEM,
    )  # fmt: skip
    adapter = load_adapter(profile)
    # Exactly N generated tokens per answer: nothing counts as a stop token.
    adapter.model.generation_config.eos_token_id = None
    adapter.policy = replace(adapter.policy, stop_ids=())  # no stop token at all
    return adapter


def interleaved(fns: list[Any], repeats: int) -> list[tuple[float, Any]]:
    """Best wall time (s) and last result of each function, calling them round-robin so a
    change in the machine's load hits every function alike (the CPU here is shared)."""
    best = [float("inf")] * len(fns)
    results: list[Any] = [None] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            results[i] = fn()
            best[i] = min(best[i], time.perf_counter() - start)
    return list(zip(best, results, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=32)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--new-tokens", type=int, default=8)
    parser.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"])
    parser.add_argument("--repeats", type=int, default=3, help="rounds of the sweep timings")
    parser.add_argument("--latency-repeats", type=int, default=5, help="rounds of latency")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from cliffscope.engines.sweep import naive_sweep, shared_sweep
    from cliffscope.engines.truncation import truncate

    with tempfile.TemporaryDirectory() as tmp:
        adapter = load(build_model(Path(tmp) / "model", args.hidden, args.layers), args.attn)
        images = [
            Image.new("RGB", (400, 300), (40 * i, 90, 200 - 30 * i)) for i in range(args.batch)
        ]
        batch = adapter.build_batch(images, [PROMPT] * args.batch)
        groups = batch.groups[0]
        n_image, n_text = len(groups.image), len(groups.prompt) - len(groups.image)
        n_before = len(groups.system)
        points = list(range(args.layers + 1))
        report: dict[str, Any] = {
            "device": str(adapter.device),
            "threads": torch.get_num_threads(),
            "layers": args.layers,
            "hidden": args.hidden,
            "attn": args.attn,
            "batch": args.batch,
            "image_tokens": n_image,
            "text_tokens": n_text,
            "text_before_image": n_before,
            "points": len(points),
        }
        print(json.dumps(report))
        with torch.no_grad():
            shared_sweep(adapter, batch, [1], 2)  # warm-up
            for name, n_new in (("single_token", 1), ("generated", args.new_tokens)):
                (t_shared, shared), (t_naive, naive) = interleaved(
                    [
                        partial(shared_sweep, adapter, batch, points, n_new),
                        partial(naive_sweep, adapter, batch, points, n_new),
                    ],
                    args.repeats,
                )
                diff = max(
                    float((shared.first_logits[k] - naive.first_logits[k]).abs().max())
                    for k in naive.first_logits
                )
                report[name] = {
                    "new_tokens": n_new,
                    "answer_tokens": max(len(a) for v in shared.answers.values() for a in v),
                    "shared_s": round(t_shared, 3),
                    "naive_s": round(t_naive, 3),
                    "speedup": round(t_naive / t_shared, 2),
                    "answers_identical": shared.answers == naive.answers,
                    "max_logit_diff": diff,
                }
                print(json.dumps({name: report[name]}))
            positions = adapter.position_ids(batch)

            def forward(k: int) -> None:
                with truncate(adapter, k, batch):
                    adapter.model(**batch.inputs, position_ids=positions, logits_to_keep=1)

            latency = interleaved([partial(forward, k) for k in points], args.latency_repeats)
            report["latency_ms"] = {
                k: round(t * 1e3, 2) for k, (t, _) in zip(points, latency, strict=True)
            }
            print(json.dumps({"latency_ms": report["latency_ms"]}))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

"""Benchmark: prefix-shared attention knockout versus one forward per window start.

The random-weight LLaVA-1.5-shaped model of `bench/sweep.py` (32 decoder layers, 576 image
tokens, ~40 text tokens) is built offline; each prompt is teacher-forced with the model's own
greedy answer of exactly N tokens (EOS disabled). Then, for each edge (image->last,
image->instruction), every window start 0..L-1 of one window size is timed with
`knockout_shared` and `knockout_naive`, called in turn in every round (the CPU is shared, so
load changes hit both alike); their log-probs are compared. Usage:

    PYTHONPATH=. python bench/knockout.py [--batch 2] [--window 9] [--threads 1] [--json out]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from bench.sweep import PROMPT, build_model, interleaved, load

EDGES = ("image->last", "image->instruction")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=32)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--answer-tokens", type=int, default=8)
    parser.add_argument("--window", type=int, default=9)
    parser.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"])
    parser.add_argument("--repeats", type=int, default=3, help="rounds of the timings")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from cliffscope.engines.knockout import knockout_naive
    from cliffscope.engines.knockout_shared import knockout_shared

    with tempfile.TemporaryDirectory() as tmp:
        adapter = load(build_model(Path(tmp) / "model", args.hidden, args.layers), args.attn)
        images = [
            Image.new("RGB", (400, 300), (40 * i, 90, 200 - 30 * i)) for i in range(args.batch)
        ]
        prompts = [PROMPT] * args.batch
        answers = adapter.generate_ids(adapter.build_batch(images, prompts), args.answer_tokens)
        batch = adapter.build_batch(images, prompts, answers=answers)
        g = batch.groups[0]
        report: dict[str, Any] = {
            "device": str(adapter.device),
            "threads": torch.get_num_threads(),
            "layers": args.layers,
            "hidden": args.hidden,
            "attn": args.attn,
            "batch": args.batch,
            "window": args.window,
            "starts": args.layers,
            "system_tokens": len(g.system),
            "image_tokens": len(g.image),
            "instruction_tokens": len(g.instruction),
            "answer_tokens": len(g.output),
            "sequence": batch.seq_len,
        }
        print(json.dumps(report))
        knockout_shared(adapter, batch, [EDGES[0]], args.window, [0])  # warm-up
        total_shared = total_naive = 0.0
        for edge in EDGES:
            (t_shared, shared), (t_naive, naive) = interleaved(
                [
                    partial(knockout_shared, adapter, batch, [edge], args.window),
                    partial(knockout_naive, adapter, batch, [edge], args.window),
                ],
                args.repeats,
            )
            total_shared, total_naive = total_shared + t_shared, total_naive + t_naive
            diff = max(
                float(np.abs(getattr(shared, n) - getattr(naive, n)).max())
                for n in ("first", "answer", "base_first", "base_answer")
            )
            report[edge] = {
                "shared_s": round(t_shared, 3),
                "naive_s": round(t_naive, 3),
                "speedup": round(t_naive / t_shared, 2),
                "max_logprob_diff": diff,
                "mean_first_change": round(float(np.mean(shared.first_change())), 4),
            }
            print(json.dumps({edge: report[edge]}))
        report["both"] = {
            "shared_s": round(total_shared, 3),
            "naive_s": round(total_naive, 3),
            "speedup": round(total_naive / total_shared, 2),
        }
        print(json.dumps({"both": report["both"]}))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

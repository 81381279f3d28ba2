"""Benchmark: the prefix-shared prune engine against one run per branch, and pruned latency.

On bench/sweep.py's random-weight LLaVA-1.5-shaped model (32 decoder layers, 576 image tokens,
~38 text tokens per prompt), in one run:

1. single-token answers: `prune_shared` vs `prune_naive` for every (strategy, budget) branch
   (default 5 strategies x 3 budgets at layer K, pyramid on its own schedule) plus the baseline;
2. generated answers (EOS disabled, so every answer is exactly N tokens): the same
   (``--lengths 1,8,32`` times several answer lengths in one run);
3. the prefill latency of each branch against the untouched model (`prefill_seconds`), next to
   its theoretical FLOPs and KV saved (from the image tokens each stage actually kept).

The shared and naive answers are compared (they must be identical). Usage:

    PYTHONPATH=. python bench/prune.py [--batch 2] [--layer 2] [--budgets 0.25,0.111,0.0625]
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import torch

from bench.sweep import bench_header, bench_model, bench_parser, interleaved

STRATEGIES = "fastv,random,cls,pool,pyramid"


def compare(shared: Any, naive: Any) -> dict[str, Any]:
    diff = max(
        float((shared.first_logits[k] - naive.first_logits[k]).abs().max())
        for k in naive.first_logits
    )
    return {"answers_identical": shared.answers == naive.answers, "max_logit_diff": diff}


def savings_table(adapter: Any, batch: Any, branches: list, kept: dict) -> dict[str, list[float]]:
    """Mean (FLOPs saved, KV saved) per branch over the batch, from the kept counts."""
    from cliffscope.engines.prune import branch_savings
    from cliffscope.flops import DecoderDims

    dims = DecoderDims.from_config(adapter.text_config)
    out = {}
    for branch in branches:
        rows = []
        for r, groups in enumerate(batch.groups):
            n_image = len(groups.image)
            n_text = len(groups.prompt) - n_image
            rows.append(branch_savings(dims, branch, n_image, n_text, kept[branch.name][r]))
        out[branch.name] = [round(sum(v) / len(v), 4) for v in zip(*rows, strict=True)]
    return out


def main() -> None:
    parser = bench_parser(__doc__.splitlines()[0], batch=2)
    parser.add_argument("--layer", type=int, default=2, help="truncation layer K")
    parser.add_argument("--strategies", default=STRATEGIES)
    parser.add_argument("--budgets", default="0.25,0.111,0.0625")
    parser.add_argument("--schedule", default="8:0.5,16:0.25,24:0.125", help="pyramid layers")
    parser.add_argument(
        "--lengths",
        default="",
        help="answer lengths to time, e.g. 1,8,32 (default: 1 and --new-tokens)",
    )
    args = parser.parse_args()

    from cliffscope.engines.prune import make_branches, prefill_seconds, prune_naive, prune_shared

    with bench_model(args) as (adapter, batch):
        keys = [f"sample-{i}" for i in range(args.batch)]
        budgets = [float(b) for b in args.budgets.split(",")]
        branches = make_branches(
            args.strategies.split(","), budgets, args.layer, schedule=args.schedule
        )
        report = bench_header(args, adapter, batch)
        report.update(layer=args.layer, branches=[b.name for b in branches])
        print(json.dumps(report))
        with torch.no_grad():
            prune_shared(adapter, batch, branches, 2, keys)  # warm-up
            lengths = args.lengths.split(",") if args.lengths else [1, args.new_tokens]
            for n_new in map(int, lengths):
                name = f"tokens_{n_new}"
                (t_shared, shared), (t_naive, naive) = interleaved(
                    [
                        partial(prune_shared, adapter, batch, branches, n_new, keys),
                        partial(prune_naive, adapter, batch, branches, n_new, keys),
                    ],
                    args.repeats,
                )
                report[name] = {
                    "new_tokens": n_new,
                    "shared_s": round(t_shared, 3),
                    "naive_s": round(t_naive, 3),
                    "speedup": round(t_naive / t_shared, 2),
                    **compare(shared, naive),
                }
                print(json.dumps({name: report[name]}))
            saved = savings_table(adapter, batch, branches, shared.kept)
            latency = prefill_seconds(adapter, batch, branches, args.latency_repeats, keys)
            base = latency["base"]
            report["prefill"] = {
                name: {
                    "ms": round(t * 1e3, 2),
                    "x_faster": round(base / t, 2),
                    "flops_saved": saved.get(name, [0.0, 0.0])[0],
                    "kv_saved": saved.get(name, [0.0, 0.0])[1],
                }
                for name, t in latency.items()
            }
            print(json.dumps({"prefill": report["prefill"]}))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

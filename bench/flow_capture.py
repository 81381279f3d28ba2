"""Benchmark: attention-flow capture versus a plain sdpa forward and eager + output_attentions.

A random-weight LLaVA-1.5-shaped model (tiny CLIP tower giving 576 image tokens, a Llama
decoder with 32 layers) reads one prompt of 576 image + ~40 text tokens (+ teacher-forced
answer tokens). In one run it times, interleaving the modes rep by rep, the median and the
minimum of `--reps` (on a shared machine the minimum is the steadier figure):

- `sdpa`: the plain forward the capture must stay close to (goal: capture <= 1.15x);
- `capture-last` / `capture-answer`: `capture_flow` with each query mode;
- `eager+attn`: eager attention with `output_attentions=True` (the obvious alternative);

and reports memory: bytes each mode keeps (capture result vs the returned attention maps) and
peak memory: `torch.cuda.max_memory_allocated` on CUDA; on CPU, torch's allocator has no peak
counter, so a fresh child process per mode samples its own RSS while the mode runs.

    PYTHONPATH=. python bench/flow_capture.py [--hidden 256] [--layers 32] [--reps 5] [--json F]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from types import SimpleNamespace
from typing import Any

import torch

MODES = ("sdpa", "capture-last", "capture-answer", "eager+attn")
IMAGE_TOKEN, BOS, PAD = 4, 1, 3


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=32)
    ap.add_argument("--image-tokens", type=int, default=576, help="must be a square")
    ap.add_argument("--text-tokens", type=int, default=40, help="system + instruction tokens")
    ap.add_argument("--answer-tokens", type=int, default=8)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--kv-heads", type=int, default=None)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default="float32")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--no-rss", action="store_true", help="skip the per-mode child processes")
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def build(args: argparse.Namespace):
    """(adapter, batch): the model in memory, inputs built by hand (no processor needed)."""
    from transformers import (
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
    )

    from cliffscope.models.base import PreparedBatch, TokenGroups
    from cliffscope.models.llava import LlavaAdapter

    side = int(round(args.image_tokens**0.5))
    assert side * side == args.image_tokens, "--image-tokens must be a square"
    patch = 14
    vision = CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
        image_size=side * patch, patch_size=patch, projection_dim=32,
    )  # fmt: skip
    text = LlamaConfig(
        vocab_size=64, hidden_size=args.hidden, intermediate_size=args.hidden * 11 // 4,
        num_hidden_layers=args.layers, num_attention_heads=args.heads,
        num_key_value_heads=args.kv_heads or args.heads, max_position_embeddings=4096,
        pad_token_id=PAD, bos_token_id=BOS, eos_token_id=2,
    )  # fmt: skip
    config = LlavaConfig(
        vision_config=vision, text_config=text, image_token_id=IMAGE_TOKEN,
        vision_feature_select_strategy="default", vision_feature_layer=-1,
    )  # fmt: skip
    config._attn_implementation = {"": "sdpa", "text_config": "sdpa", "vision_config": "sdpa"}
    torch.manual_seed(0)
    dtype = getattr(torch, args.dtype)
    model = LlavaForConditionalGeneration(config).to(args.device, dtype).eval()
    # no processor is needed to capture flow; the adapter's decoding policy reads pad and EOS
    tokens = SimpleNamespace(tokenizer=SimpleNamespace(pad_token_id=PAD, eos_token_id=2))
    adapter = LlavaAdapter(model, processor=tokens, profile=None)

    n_system = 5
    n_instr = args.text_tokens - n_system
    gen = torch.Generator().manual_seed(0)
    system = [BOS] + torch.randint(10, 64, (n_system - 1,), generator=gen).tolist()
    instruction = torch.randint(10, 64, (n_instr,), generator=gen).tolist()
    answer = torch.randint(10, 64, (args.answer_tokens,), generator=gen).tolist()
    row = system + [IMAGE_TOKEN] * args.image_tokens + instruction + answer
    n = len(row)
    ids = torch.tensor([row] * args.batch, device=args.device)
    groups = TokenGroups(
        system=range(0, n_system),
        image=range(n_system, n_system + args.image_tokens),
        instruction=range(n_system + args.image_tokens, n - len(answer)),
        output=range(n - len(answer), n),
        pad=range(0, 0),
        length=n,
    )
    pixels = torch.randn(args.batch, 3, side * patch, side * patch, generator=gen)
    batch = PreparedBatch(
        inputs={
            "input_ids": ids,
            "attention_mask": torch.ones_like(ids),
            "pixel_values": pixels.to(args.device, dtype),
        },
        groups=[groups] * args.batch,
        prompt_lengths=[n - len(answer)] * args.batch,
        answer_ids=[answer] * args.batch,
        image_sizes=[(side * patch, side * patch)] * args.batch,
    )
    return adapter, batch


def set_text_kernel(adapter: Any, name: str) -> None:
    """The decoder's kernel only (the adapter's public switch; the tower keeps its own)."""
    adapter.set_text_attention(name)


def run_mode(adapter: Any, batch: Any, mode: str) -> int:
    """One forward in `mode`; returns the bytes of what the mode hands back."""
    from cliffscope.engines.capture import capture_flow

    if mode == "sdpa":
        with torch.inference_mode():
            adapter.model(**batch.inputs, use_cache=False, logits_to_keep=1)
        return 0
    if mode.startswith("capture-"):
        flow = capture_flow(adapter, batch, mode.split("-")[1], "mean")
        return flow.per_head.nbytes + flow.counts.nbytes + flow.valid.nbytes
    set_text_kernel(adapter, "eager")
    try:
        with torch.inference_mode():
            out = adapter.model(
                **batch.inputs, use_cache=False, logits_to_keep=1, output_attentions=True
            )
        return sum(a.numel() * a.element_size() for a in out.attentions)
    finally:
        set_text_kernel(adapter, "sdpa")


def observe_time(adapter: Any, batch: Any, mode: str, args: argparse.Namespace) -> float:
    """Seconds per forward spent inside the collector (the capture's own work), min of 5.

    Less noisy than a difference of two whole-forward timings on a busy machine.
    """
    from cliffscope.engines.capture import FlowCollector

    original = FlowCollector.observe
    spent: list[float] = []

    def timed(self: Any, *a: Any, **kw: Any) -> None:
        sync(args.device)
        start = time.perf_counter()
        original(self, *a, **kw)
        sync(args.device)
        spent[-1] += time.perf_counter() - start

    FlowCollector.observe = timed  # type: ignore[method-assign]
    try:
        for _ in range(5):
            spent.append(0.0)
            run_mode(adapter, batch, mode)
    finally:
        FlowCollector.observe = original  # type: ignore[method-assign]
    return min(spent)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize()


def child(args: argparse.Namespace) -> None:
    """Fresh process: build, run one mode once, print its peak RSS increase in bytes.

    The parent sets MALLOC_MMAP_THRESHOLD_ so every tensor-sized block is its own mapping and
    RSS follows live memory; a thread samples RSS every 0.5 ms while the mode runs.
    """
    import ctypes
    import threading

    adapter, batch = build(args)
    run_mode(adapter, batch, "sdpa")  # first-touch costs (thread pools, caches) out of the way
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    base = _rss_bytes()
    peak = [base]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _rss_bytes())
            time.sleep(0.0005)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    run_mode(adapter, batch, args.child)
    stop.set()
    thread.join()
    peak[0] = max(peak[0], _rss_bytes())
    print(json.dumps({"base": base, "peak": peak[0]}))


def rss_peaks(argv: list[str]) -> dict[str, dict[str, int]]:
    import os

    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
    out = {}
    for mode in MODES:
        proc = subprocess.run(
            [sys.executable, __file__, *argv, "--child", mode],
            capture_output=True, text=True, check=True, env=env,
        )  # fmt: skip
        out[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child:
        child(args)
        return
    adapter, batch = build(args)
    cfg = adapter.text_config
    print(
        f"config: layers={cfg.num_hidden_layers} hidden={cfg.hidden_size} heads="
        f"{cfg.num_attention_heads} kv_heads={cfg.num_key_value_heads} image_tokens="
        f"{len(batch.groups[0].image)} text_tokens={args.text_tokens} answer_tokens="
        f"{args.answer_tokens} seq={batch.seq_len} batch={args.batch} device={args.device} "
        f"dtype={args.dtype} torch={torch.__version__} threads={torch.get_num_threads()}"
    )
    times: dict[str, list[float]] = {m: [] for m in MODES}
    kept: dict[str, int] = {}
    peaks: dict[str, int] = {}
    for mode in MODES:  # warm-up
        run_mode(adapter, batch, mode)
    for rep in range(args.reps):
        for mode in MODES[rep % len(MODES) :] + MODES[: rep % len(MODES)]:  # no order bias
            if args.device.startswith("cuda"):
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
                before = torch.cuda.memory_allocated()
            sync(args.device)
            start = time.perf_counter()
            kept[mode] = run_mode(adapter, batch, mode)
            sync(args.device)
            times[mode].append(time.perf_counter() - start)
            if args.device.startswith("cuda"):
                peaks[mode] = torch.cuda.max_memory_allocated() - before
    observe_s = {m: observe_time(adapter, batch, m, args) for m in MODES if m.startswith("capture")}
    rss = {} if args.no_rss or args.device.startswith("cuda") else rss_peaks(argv)
    base = statistics.median(times["sdpa"])
    rows = []
    best = min(times["sdpa"])
    print(
        f"{'mode':<16}{'median s':>10}{'x sdpa':>8}{'min s':>8}{'x sdpa':>8}"
        f"{'kept bytes':>14}{'peak MiB':>10}"
    )
    for mode in MODES:
        med = statistics.median(times[mode])
        if peaks:
            peak = peaks[mode] / 2**20
        elif rss:
            peak = (rss[mode]["peak"] - rss[mode]["base"]) / 2**20
        else:
            peak = float("nan")
        rows.append({"mode": mode, "median_s": med, "ratio": med / base, "kept_bytes": kept[mode],
                     "min_ratio": min(times[mode]) / best, "peak_mib": peak, "times": times[mode]})  # fmt: skip
        low = min(times[mode])
        print(
            f"{mode:<16}{med:>10.3f}{med / base:>8.3f}{low:>8.3f}{low / best:>8.3f}"
            f"{kept[mode]:>14,}{peak:>10.1f}"
        )
    for mode, spent in observe_s.items():
        print(
            f"{mode}: {spent:.4f} s per forward inside the collector ({spent / best:.1%} of sdpa)"
        )
    print(
        "peak MiB = "
        + (
            "torch.cuda.max_memory_allocated during the mode"
            if peaks
            else "peak RSS increase of a fresh process while it runs the mode once"
        )  # fmt: skip
    )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "rows": rows, "observe_s": observe_s}, fh, indent=1)


if __name__ == "__main__":
    main()

"""The deep demo's recipe: LLaVA's training stages in miniature, every knob in one dataclass.

1. CLIP tower: per-patch shape and colour (`vision.py`), then frozen, as LLaVA's CLIP is.
2. Text: the language model alone learns next-token prediction on chat-formatted text scenes
   (`deep_data.TextCorpus`), every sequence behind the same long system prompt.
3. Projector alignment: language model frozen, only the projector learns (captions by
   default), as in LLaVA-1.5's first stage.
4. Instruction tuning: projector and language model on questions and captions of a mixture
   of easy (`shapes-vqa`) and harder scenes. Optionally a share of the rows lose their image
   tokens from a random layer k >= ``trunc_min`` on (`forward.decoder_loss`): such a row can
   only be answered from what text positions read from the image in layers below k. Of those
   rows, a ``swap_share`` sees another row's image from k on instead of none (an experiment:
   it makes reading the image above k harmful, not just useless).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from cliffscope.demo.data import collate
from cliffscope.demo.deep_data import MixedStream, TextCorpus, collate_text
from cliffscope.demo.forward import decoder_loss
from cliffscope.demo.train import Progress, adamw, schedule


@dataclass
class DeepSettings:
    """Everything that decides the deep demo's weights besides the code itself.

    The defaults are the shipped recipe (variant v15 in docs/demo.md: v02 with the language
    model learning at 0.3x the projector's rate in instruction tuning, which finds the colour
    binding on every seed tried). One thread, because the weights must not depend on the
    machine's core count.
    """

    seed: int = 0
    num_layers: int = 8
    hidden: int = 128
    heads: int = 4
    mlp_ratio: int = 2
    vision_hidden: int = 64
    vision_layers: int = 3
    vision_steps: int = 300
    vision_batch: int = 64
    vision_lr: float = 2e-3
    text_steps: int = 600
    text_lr: float = 1e-3
    text_questions: int = 1
    align_steps: int = 150
    align_lr: float = 2e-3
    align_caption_share: float = 1.0
    steps: int = 2000
    lr: float = 1e-3
    lm_lr_scale: float = 0.3
    caption_share: float = 0.2
    hard_share: float = 0.15
    trunc_share: float = 0.8
    trunc_min: int = 4
    swap_share: float = 0.0
    batch_size: int = 32
    warmup: int = 100
    decay_share: float = 0.25
    weight_decay: float = 0.01
    clip: float = 1.0
    eval_vqa: int = 300
    eval_captions: int = 100
    threads: int = 1


#: The stages in build order, and the settings each one reads (a stage also depends on all
#: stages before it). `build_deep.stage_key` hashes them.
STAGES = ("vision", "text", "align", "instruct")
STAGE_FIELDS: dict[str, tuple[str, ...]] = {
    "vision": (
        "seed", "num_layers", "hidden", "heads", "mlp_ratio", "vision_hidden", "vision_layers",
        "vision_steps", "vision_batch", "vision_lr", "threads",
    ),
    "text": (
        "text_steps", "text_lr", "text_questions", "batch_size", "warmup", "decay_share",
        "weight_decay", "clip",
    ),
    "align": ("align_steps", "align_lr", "align_caption_share", "hard_share"),
    "instruct": (
        "steps", "lr", "lm_lr_scale", "caption_share", "trunc_share", "trunc_min", "swap_share",
    ),
}  # fmt: skip


def run_stage(
    stage: str,
    model: Any,
    steps: int,
    lr: float,
    settings: DeepSettings,
    batch_at: Callable[[int], Any],
    loss_of: Callable[[int, Any], Any],
    progress: Progress,
    lm_scale: float = 1.0,
) -> float:
    """AdamW over the parameters that require grad; returns the mean loss of the last 50 steps.

    ``batch_at(step)`` makes a step's batch (drawn from ``(seed, step)`` alone, so it can be
    made ahead, in `prefetched`); ``loss_of(step, batch)`` is the model's loss on it. The
    language model's rate is ``lm_scale`` times ``lr`` (the projector's is ``lr``).
    """
    import torch

    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    params = [p for _, p in named]
    is_lm = lambda name: name.startswith(("model.language_model.", "lm_head."))  # noqa: E731
    opt = adamw(named, lr, settings.weight_decay, lambda n: lm_scale if is_lm(n) else 1.0)
    warmup = min(settings.warmup, max(1, steps // 4))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: schedule(s, steps, warmup, settings.decay_share)
    )
    model.train()
    losses: list[float] = []
    for step, batch in prefetched(batch_at, steps):
        loss = loss_of(step, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, settings.clip)
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        progress(stage, step + 1, steps, {"loss": float(np.mean(losses[-20:]))})
    model.eval()
    return float(np.mean(losses[-50:])) if losses else float("nan")


def prefetched(batch_at: Callable[[int], Any], steps: int) -> Iterator[tuple[int, Any]]:
    """``(step, batch_at(step))`` for every step, each batch made on a second thread while
    the model trains on the one before (rendering scenes is about a tenth of a step). The
    batches, and so the weights, are those of making them in turn: each depends only on its
    step, and the pool's one thread makes them all, in step order."""
    if steps <= 0:
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="demo-batches") as pool:
        pending = pool.submit(batch_at, 0)
        for step in range(steps):
            batch = pending.result()
            if step + 1 < steps:
                pending = pool.submit(batch_at, step + 1)
            yield step, batch


@dataclass
class Cuts:
    """Per row of a batch: from which layer its image is dropped or swapped, and with whom."""

    trunc_from: Any  # [B] long; num_layers = never
    swap_from: Any | None  # [B] long, or None when no row swaps
    partner: Any | None  # [B] long: whose image a swapped row sees


def truncation_layers(settings: DeepSettings, step: int, rows: int) -> Cuts:
    """A ``trunc_share`` of rows loses its image from a layer k >= ``trunc_min`` on (k drawn
    uniformly from ``trunc_min .. num_layers``; ``num_layers`` keeps the image); of those, a
    ``swap_share`` sees another row's image from k on instead of none."""
    import torch

    rng = np.random.default_rng([settings.seed, step, 17])
    never = settings.num_layers
    k = np.full(rows, never, dtype=np.int64)
    cut = rng.random(rows) < settings.trunc_share
    low = min(max(0, settings.trunc_min), never)
    k[cut] = rng.integers(low, never + 1, size=int(cut.sum()))
    swapped = cut & (rng.random(rows) < settings.swap_share)
    if not swapped.any() or rows < 2:
        return Cuts(torch.from_numpy(k), None, None)
    partner = (np.arange(rows) + int(rng.integers(1, rows))) % rows
    swap = np.where(swapped, k, never)
    drop = np.where(swapped, never, k)
    return Cuts(torch.from_numpy(drop), torch.from_numpy(swap), torch.from_numpy(partner))


def _freeze(model: Any, trainable: str) -> None:
    """Only the projector ("projector") or projector + language model ("all") learn."""
    model.requires_grad_(False)
    model.model.multi_modal_projector.requires_grad_(True)
    if trainable == "all":
        model.model.language_model.requires_grad_(True)
        model.lm_head.requires_grad_(True)


def train_text(
    model: Any, corpus: TextCorpus, settings: DeepSettings, pad_id: int, progress: Progress
) -> float:
    """Stage 2: the language model on text scenes (tower and projector untouched)."""
    model.requires_grad_(False)
    model.model.language_model.requires_grad_(True)
    model.lm_head.requires_grad_(True)
    prefix = corpus.cache.prefix_len

    def batch_at(step: int) -> dict[str, Any]:
        return collate_text(corpus.batch(settings.seed, step, settings.batch_size), pad_id)

    def loss_of(step: int, b: dict[str, Any]) -> Any:
        return decoder_loss(model, b["input_ids"], b["labels"], prefix)

    steps, lr = settings.text_steps, settings.text_lr
    return run_stage("text", model, steps, lr, settings, batch_at, loss_of, progress)


def train_images(
    stage: str,
    model: Any,
    stream: MixedStream,
    normalize: Callable[[np.ndarray], Any],
    settings: DeepSettings,
    pad_id: int,
    progress: Progress,
) -> float:
    """Stage 3 ("align": projector only) or 4 ("instruct": projector + language model)."""
    align = stage == "align"
    _freeze(model, "projector" if align else "all")
    steps = settings.align_steps if align else settings.steps
    lr = settings.align_lr if align else settings.lr
    share = settings.align_caption_share if align else settings.caption_share
    prefix = stream.cache.prefix_len
    offset = 500_000 if align else 0  # the two stages draw different scenes

    def batch_at(step: int) -> dict[str, Any]:
        examples, images = stream.batch(settings.seed, offset + step, settings.batch_size, share)
        return collate(examples, normalize(images), pad_id)

    def loss_of(step: int, b: dict[str, Any]) -> Any:
        if align:
            return decoder_loss(model, b["input_ids"], b["labels"], prefix, b["pixel_values"])
        cuts = truncation_layers(settings, step, len(b["input_ids"]))
        return decoder_loss(
            model, b["input_ids"], b["labels"], prefix, b["pixel_values"],
            cuts.trunc_from, cuts.swap_from, cuts.partner,
        )  # fmt: skip

    scale = 1.0 if align else settings.lm_lr_scale
    return run_stage(stage, model, steps, lr, settings, batch_at, loss_of, progress, scale)

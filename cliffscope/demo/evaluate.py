"""Held-out checks of the demo model: does it answer from the image, and caption it?

Everything goes through the processor's chat template and `model.generate` (greedy), the way
a user's analysis run would, so the manifest's numbers are the numbers a user can reproduce.
"No image" means the prompt text with the ``<image>`` placeholder deleted and no pixel values:
the model then sees system prompt and question only (contiguous positions), which is the
k = 0 end of a truncation sweep up to the position gap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from cliffscope.demo.tokenizer import IMAGE_TOKEN, conversation
from cliffscope.metrics.registry import get_metric
from cliffscope.tasks.shapes import CAPTION_PROMPT, ShapesConfig, caption_sample, vqa_sample

if TYPE_CHECKING:
    from transformers import LlavaForConditionalGeneration, LlavaProcessor

#: How the no-image accuracy is measured; copied into the manifest verbatim.
NO_IMAGE_METHOD = (
    "prompt text with the <image> placeholder deleted and no pixel_values "
    "(system prompt + question only, contiguous positions)"
)


@dataclass
class EvalResult:
    accuracy: float  # corpus score: exact-match accuracy, or CIDEr-D for captions
    predictions: list[str]
    references: list[list[str]]
    per_sample: list[float]


def generate(
    model: LlavaForConditionalGeneration,
    processor: LlavaProcessor,
    images: list,
    questions: list[str],
    max_new_tokens: int,
    with_image: bool = True,
    batch_size: int = 50,
) -> list[str]:
    """Greedy answers to ``questions`` about ``images`` (decoded, special tokens dropped)."""
    import torch

    outputs: list[str] = []
    for start in range(0, len(questions), batch_size):
        qs = questions[start : start + batch_size]
        texts = [
            processor.apply_chat_template(
                conversation(q), add_generation_prompt=True, tokenize=False
            )
            for q in qs
        ]
        if with_image:
            inputs = processor(
                text=texts,
                images=images[start : start + batch_size],
                padding=True,
                return_tensors="pt",
            )
        else:
            texts = [t.replace(IMAGE_TOKEN, "") for t in texts]
            inputs = processor.tokenizer(texts, padding=True, return_tensors="pt")
        with torch.no_grad():
            out = model.generate(
                **inputs,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=processor.tokenizer.pad_token_id,
                eos_token_id=processor.tokenizer.eos_token_id,
            )
        new = out[:, inputs["input_ids"].shape[1] :]
        outputs += processor.tokenizer.batch_decode(new, skip_special_tokens=True)
    return [o.strip() for o in outputs]


def vqa_eval(
    model: LlavaForConditionalGeneration,
    processor: LlavaProcessor,
    config: ShapesConfig,
    indices: range,
    with_image: bool = True,
) -> EvalResult:
    """Exact-match accuracy on ``vqa_sample(config, i)`` for ``i`` in ``indices``."""
    samples = [vqa_sample(config, i) for i in indices]
    preds = generate(
        model,
        processor,
        [s["image"] for s in samples],
        [s["question"] for s in samples],
        max_new_tokens=3,
        with_image=with_image,
    )
    refs = [s["answers"] for s in samples]
    result = get_metric("exact_match").score_batch(preds, refs)
    return EvalResult(result.corpus, preds, refs, result.per_sample)


def caption_eval(
    model: LlavaForConditionalGeneration,
    processor: LlavaProcessor,
    config: ShapesConfig,
    indices: range,
) -> EvalResult:
    """Corpus CIDEr-D of greedy captions of ``caption_sample(config, i)``."""
    samples = [caption_sample(config, i) for i in indices]
    preds = generate(
        model,
        processor,
        [s["image"] for s in samples],
        [CAPTION_PROMPT] * len(samples),
        max_new_tokens=16,
    )
    refs = [s["caption_refs"] for s in samples]
    result = get_metric("cider").score_batch(preds, refs)
    return EvalResult(result.corpus, preds, refs, result.per_sample)

"""Held-out checks of the demo model: does it answer from the image, and caption it?

Samples come from the registered `shapes-vqa` / `shapes-caption` tasks (their prompts, images,
references and metrics) and go through the processor's chat template and `model.generate`
(greedy), the way a user's analysis run would, so the manifest's numbers are the numbers a
user can reproduce. "No image" means the prompt text with the ``<image>`` placeholder deleted
and no pixel values: the model then sees system prompt and instruction only (contiguous
positions), which is the k = 0 end of a truncation sweep up to the position gap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cliffscope.demo.tokenizer import IMAGE_TOKEN, conversation
from cliffscope.metrics.registry import get_metric

if TYPE_CHECKING:
    from transformers import LlavaForConditionalGeneration, LlavaProcessor

    from cliffscope.tasks.task import Task

#: How the no-image accuracy is measured; copied into the manifest verbatim.
NO_IMAGE_METHOD = (
    "prompt text with the <image> placeholder deleted and no pixel_values "
    "(system prompt + instruction only, contiguous positions)"
)


@dataclass
class EvalResult:
    score: float  # the task metric over the set: exact-match accuracy, or CIDEr-D
    predictions: list[str]
    references: list[list[str]]
    per_sample: list[float]


def generate(
    model: LlavaForConditionalGeneration,
    processor: LlavaProcessor,
    images: list[Any],
    prompts: list[str],
    max_new_tokens: int,
    with_image: bool = True,
    batch_size: int = 50,
) -> list[str]:
    """Greedy answers to user turns ``prompts`` about ``images`` (special tokens dropped)."""
    import torch

    outputs: list[str] = []
    for start in range(0, len(prompts), batch_size):
        texts = [
            processor.apply_chat_template(
                conversation(p), add_generation_prompt=True, tokenize=False
            )
            for p in prompts[start : start + batch_size]
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


def evaluate_task(
    model: LlavaForConditionalGeneration,
    processor: LlavaProcessor,
    task: Task,
    indices: range,
    with_image: bool = True,
) -> EvalResult:
    """The task's metric on samples ``indices`` (ids ``shapes-000000`` ...), greedy answers."""
    from cliffscope.tasks.shapes import sample_id

    samples = [task.get(sample_id(i)) for i in indices]
    preds = generate(
        model,
        processor,
        [s.image for s in samples],
        [s.prompt for s in samples],
        max_new_tokens=task.spec.max_new_tokens,
        with_image=with_image,
    )
    refs = [list(s.references) for s in samples]
    result = get_metric(task.spec.metric).score_batch(preds, refs)
    return EvalResult(result.corpus, preds, refs, result.per_sample)

"""Turn (image, prompt[, answer]) triples into a left-padded batch with token-group spans.

The processor does the real work (chat template, image-token expansion, pixel tensors); this
module only strips its padding, appends teacher-forced answers, re-pads on the left and reads
the four groups off the token ids, so the spans can never disagree with what the model sees.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from cliffscope.errors import CliffscopeError
from cliffscope.models import compat
from cliffscope.models.base import PreparedBatch, TokenGroups

if TYPE_CHECKING:
    from PIL import Image

    from cliffscope.models.base import ModelAdapter


def build_batch(
    adapter: ModelAdapter,
    images: list[Image.Image],
    prompts: list[str],
    answers: list[str] | list[list[int]] | None = None,
) -> PreparedBatch:
    """See `ModelAdapter.build_batch`."""
    images, prompts = list(images), list(prompts)
    if len(images) != len(prompts) or not prompts:
        raise CliffscopeError(
            f"need one image per prompt, got {len(images)} images and {len(prompts)} prompts"
        )
    if answers is not None and len(answers) != len(prompts):
        raise CliffscopeError(f"got {len(answers)} answers for {len(prompts)} prompts")
    images = [im.convert("RGB") if im.mode != "RGB" else im for im in images]
    texts = [adapter.render_prompt(p) for p in prompts]
    tokenizer = adapter.tokenizer
    kwargs: dict[str, Any] = {"padding": True, "padding_side": "left", "return_tensors": "pt"}
    # Like ProcessorMixin.apply_chat_template: a template that writes BOS itself gets no second one.
    if tokenizer.bos_token and texts[0].startswith(tokenizer.bos_token):
        kwargs["add_special_tokens"] = False
    kwargs.update(adapter.processor_kwargs())
    encoded = adapter.processor(images=adapter.processor_images(images), text=texts, **kwargs)
    enc = compat.model_inputs(adapter.model, dict(encoded))

    ids, mask = enc["input_ids"], enc["attention_mask"]
    rows = [ids[r][mask[r].bool()].tolist() for r in range(len(prompts))]
    answer_ids = _answer_ids(tokenizer, answers) if answers is not None else None
    full = [row + (answer_ids[r] if answer_ids else []) for r, row in enumerate(rows)]
    length = max(len(row) for row in full)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    seq_keys = [
        k
        for k, v in enc.items()
        if isinstance(v, torch.Tensor)
        and not v.is_floating_point()  # never pixel values that happen to share the shape
        and k not in ("image_grid_thw", "image_sizes")
        and v.shape == ids.shape
    ]
    new: dict[str, torch.Tensor] = {}
    for key in seq_keys:
        fill = pad_id if key == "input_ids" else 0
        out = torch.full((len(full), length), fill, dtype=enc[key].dtype)
        for r, row in enumerate(full):
            n_prompt, n = len(rows[r]), len(row)
            if key == "input_ids":
                out[r, length - n :] = torch.tensor(row, dtype=out.dtype)
            elif key == "attention_mask":
                out[r, length - n :] = 1
            else:  # e.g. mm_token_type_ids: answer tokens are text (0)
                out[r, length - n : length - n + n_prompt] = enc[key][r][mask[r].bool()]
        new[key] = out
    enc.update(new)

    image_token_id = adapter.image_token_id
    groups = [token_groups(full[r], len(rows[r]), length, image_token_id) for r in range(len(full))]
    enc = adapter.extra_inputs(enc)
    inputs = _to_device(enc, adapter.input_device(), adapter.dtype)
    return PreparedBatch(
        inputs=inputs,
        groups=groups,
        prompt_lengths=[len(r) for r in rows],
        answer_ids=answer_ids,
        image_sizes=[tuple(im.size) for im in images],
        texts=texts,
    )


def token_groups(row: list[int], prompt_len: int, length: int, image_token_id: int) -> TokenGroups:
    """Groups of one unpadded row (prompt then answer) placed at the right of `length`.

    image = every prompt position whose id is the image token; system = everything before the
    first of them; instruction = every other prompt position after it (separators inside an
    image run, end-of-image markers, the question, the assistant prefix); output = the answer.
    """
    offset = length - len(row)
    hits = [i for i, t in enumerate(row[:prompt_len]) if t == image_token_id]
    if not hits:
        raise CliffscopeError(
            "the prompt holds no image token after processing",
            hint="check that the processor's chat template renders the image placeholder",
        )
    image = set(hits)
    first = hits[0]
    return TokenGroups(
        system=range(offset, offset + first),
        image=tuple(offset + i for i in hits),
        instruction=tuple(offset + i for i in range(first, prompt_len) if i not in image),
        output=range(offset + prompt_len, length),
        pad=range(0, offset),
        length=length,
    )


def _answer_ids(tokenizer: Any, answers: list[str] | list[list[int]]) -> list[list[int]]:
    out = []
    for answer in answers:
        if isinstance(answer, str):
            out.append(list(tokenizer(answer, add_special_tokens=False)["input_ids"]))
        else:
            out.append([int(t) for t in answer])
    return out


def _to_device(enc: dict[str, Any], device: torch.device, dtype: torch.dtype) -> dict[str, Any]:
    out = {}
    for key, value in enc.items():
        if isinstance(value, torch.Tensor):
            value = value.to(device)
            if value.is_floating_point():
                value = value.to(dtype)
        out[key] = value
    return out

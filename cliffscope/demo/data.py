"""Training batches for the demo model: shapes scenes through the real processor's format.

Every step draws fresh scenes (a small model memorises a fixed pool of a few thousand scenes
and then generalises worse), normalises them like the processor does, and asks a colour
question or a caption about each. Prompts come from the processor's own chat template
and image-token expansion, so the model is trained on exactly the sequences it is analysed on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from cliffscope.demo.tokenizer import conversation
from cliffscope.tasks.shapes import (
    CAPTION_PROMPT,
    ShapesConfig,
    captions,
    make_question,
    make_scene,
    render,
)
from cliffscope.tasks.spec import render_prompt

if TYPE_CHECKING:
    import torch
    from transformers import LlavaProcessor

#: Training scenes are drawn from indices at and above this, held-out ones from 0 up, so the
#: held-out set is exactly the first samples of the `shapes-vqa` / `shapes-caption` tasks.
TRAIN_INDEX_OFFSET = 1_000_000


@dataclass
class Example:
    """One teacher-forced example: prompt ids (image expanded), target ids (ends with EOS)."""

    scene: int  # row of its image in the step's image batch
    prompt: list[int]
    target: list[int]


class PromptCache:
    """Token ids of chat-templated prompts and of answers, computed once per distinct text.

    Every prompt must start with the same tokens up to its first image token (BOS, system
    prompt, ``USER:``); `prefix_len` is that shared length, which training exploits.
    """

    def __init__(self, processor: LlavaProcessor, dummy_image: object) -> None:
        self.processor = processor
        self.dummy_image = dummy_image
        self._prompts: dict[str, list[int]] = {}
        self._targets: dict[str, list[int]] = {}
        first = self.prompt(CAPTION_PROMPT)
        self.prefix_len = first.index(processor.image_token_id)
        self._prefix = first[: self.prefix_len]

    @property
    def prefix(self) -> list[int]:
        """The ``prefix_len`` ids every prompt starts with (BOS, system prompt, ``USER:``)."""
        return list(self._prefix)

    def prompt(self, question: str) -> list[int]:
        if question not in self._prompts:
            text = self.processor.apply_chat_template(
                conversation(question), add_generation_prompt=True, tokenize=False
            )
            ids = list(self.processor(text=[text], images=[self.dummy_image])["input_ids"][0])
            if self._prompts and ids[: self.prefix_len + 1] != [
                *self._prefix,
                self.processor.image_token_id,
            ]:
                raise ValueError(f"prompt for {question!r} does not share the system prefix")
            self._prompts[question] = ids
        return self._prompts[question]

    def target(self, answer: str) -> list[int]:
        if answer not in self._targets:
            tok = self.processor.tokenizer
            ids = tok(answer, add_special_tokens=False)["input_ids"]
            self._targets[answer] = [*ids, tok.eos_token_id]
        return self._targets[answer]


class SceneStream:
    """Fresh scenes for every step, each drawn once: the model cannot memorise a pool.

    Step ``s`` uses scene indices ``TRAIN_INDEX_OFFSET + s * batch + j`` (questions as
    `vqa_sample` asks them, wrapped in the task's prompt template); the caption/question split
    and the caption paraphrases come from a generator seeded with ``(seed, s)``, so a build is
    a pure function of its seed.
    Rendering 64 scenes costs ~15 ms, small beside a training step.
    """

    def __init__(
        self,
        config: ShapesConfig,
        processor: LlavaProcessor,
        cache: PromptCache,
        vqa_template: str = "{question}",
        caption_prompt: str = CAPTION_PROMPT,
    ) -> None:
        self.config = config
        self.cache = cache
        self.vqa_template = vqa_template
        self.caption_prompt = caption_prompt
        ip = processor.image_processor
        self.mean = np.asarray(ip.image_mean, dtype=np.float32).reshape(1, 3, 1, 1)
        self.std = np.asarray(ip.image_std, dtype=np.float32).reshape(1, 3, 1, 1)

    def batch(
        self, seed: int, step: int, batch: int, caption_share: float
    ) -> tuple[list[Example], np.ndarray]:
        """Examples of step ``step`` and their images (uint8, B x H x W x 3)."""
        rng = np.random.default_rng([seed, step, 7])
        examples, images = [], []
        for j in range(batch):
            scene = make_scene(self.config, TRAIN_INDEX_OFFSET + step * batch + j)
            images.append(np.asarray(render(scene, self.config.image_size)))
            if rng.random() < caption_share:
                refs = captions(scene)
                prompt = self.cache.prompt(self.caption_prompt)
                target = self.cache.target(refs[int(rng.integers(len(refs)))])
            else:
                q = make_question(self.config, scene)
                text = render_prompt(self.vqa_template, q.text, None, "")
                prompt, target = self.cache.prompt(text), self.cache.target(q.answers[0])
            examples.append(Example(j, prompt, target))
        return examples, np.stack(images)

    def pixel_values(self, images: np.ndarray) -> torch.Tensor:
        """CLIP normalisation of uint8 images; equals the processor's output to ~1e-7.

        The processor's resize and centre crop are identities at the model's image size,
        which `tests/test_demo_model.py` checks.
        """
        import torch

        x = images.transpose(0, 3, 1, 2).astype(np.float32) / 255.0
        return torch.from_numpy((x - self.mean) / self.std)


def collate(
    examples: list[Example], pixel_values: torch.Tensor, pad_id: int
) -> dict[str, torch.Tensor]:
    """Right-padded batch; labels cover only the answer (and EOS), as in LLaVA's fine-tuning."""
    import torch

    length = max(len(e.prompt) + len(e.target) for e in examples)
    ids = torch.full((len(examples), length), pad_id, dtype=torch.long)
    labels = torch.full_like(ids, -100)
    mask = torch.zeros_like(ids)
    for row, e in enumerate(examples):
        seq = e.prompt + e.target
        ids[row, : len(seq)] = torch.tensor(seq)
        labels[row, len(e.prompt) : len(seq)] = torch.tensor(e.target)
        mask[row, : len(seq)] = 1
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "labels": labels,
        "pixel_values": pixel_values[[e.scene for e in examples]],
    }

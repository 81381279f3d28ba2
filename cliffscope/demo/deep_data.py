"""Batches for the deep demo's three stages: text, projector alignment, instruction tuning.

LLaVA's language model was pre-trained on text before it ever saw an image. The stand-in
here is synthetic text in the chat format the model is later prompted with, the system
prompt first: the user turn *describes* a shapes scene in words where an image would go
("a red circle left of a blue square. What color is the circle?") and the assistant
answers. A language model that can answer that has learnt to look up and bind words in its
context; the projector then only has to make image tokens read like such a description.

Image batches draw each row's scene from a weighted mixture of scene configs (the
`shapes-vqa` scenes plus harder ones: more shapes, distractors, shape and side questions),
each scene drawn once, so a build is a pure function of its seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from cliffscope.demo.data import TRAIN_INDEX_OFFSET, Example, PromptCache
from cliffscope.tasks.shapes import (
    QUESTION_TEMPLATES,
    Question,
    Scene,
    ShapesConfig,
    captions,
    make_question,
    make_scene,
    render,
)
from cliffscope.tasks.spec import render_prompt

if TYPE_CHECKING:
    import torch

#: Text-stage scenes come from indices at and above this (disjoint from every other stage).
TEXT_INDEX_OFFSET = 3_000_000


def ask(config: ShapesConfig, scene: Scene, rng: np.random.Generator) -> Question:
    """A question of one of ``config.question_types`` about ``scene``, drawn with ``rng``.

    The same questions `shapes.make_question` asks (its templates and answers), but several
    per scene: `make_question` draws exactly one per scene index.
    """
    qtype = config.question_types[int(rng.integers(len(config.question_types)))]
    objs = scene.objects
    target = objs[int(rng.integers(len(objs)))]
    if qtype == "color":
        return Question(qtype, QUESTION_TEMPLATES[qtype].format(shape=target.shape), [target.color])
    if qtype == "shape":
        return Question(qtype, QUESTION_TEMPLATES[qtype].format(color=target.color), [target.shape])
    other = [o for o in objs if o is not target][int(rng.integers(len(objs) - 1))]
    answer = "left" if target.center_x < other.center_x else "right"
    text = QUESTION_TEMPLATES[qtype].format(shape=target.shape, other=other.shape)
    return Question(qtype, text, [answer])


class TextCorpus:
    """Chat-formatted text scenes, ``questions`` turns each, behind the system prompt.

    ``<system> USER: <description>. <question> ASSISTANT: <answer></s> USER: <question>
    ASSISTANT: <answer></s> ...``. Every sequence starts with the same ``prefix_len`` tokens as
    the image prompts (BOS, system prompt, ``USER:``); the loss covers every token after that.
    """

    def __init__(
        self, cache: PromptCache, configs: Sequence[ShapesConfig], questions: int = 1
    ) -> None:
        if questions < 1:
            raise ValueError("a text scene needs at least one question")
        self.cache = cache
        self.configs = list(configs)
        self.questions = questions

    def tokens(self, messages: list[dict[str, str]]) -> list[int]:
        """Ids of a conversation (no generation prompt: it ends with the last answer's EOS)."""
        proc = self.cache.processor
        text = proc.apply_chat_template(messages, tokenize=False)
        ids = proc.tokenizer(text, add_special_tokens=True)["input_ids"]
        if ids[: self.cache.prefix_len] != self.cache.prefix:
            raise ValueError("text prompts must share the image prompts' system prefix")
        if proc.tokenizer.unk_token_id in ids:
            raise ValueError(f"the text corpus has words outside the vocabulary: {text!r}")
        return ids

    def conversation(self, config: ShapesConfig, index: int, rng: np.random.Generator) -> list:
        """Scene ``index`` described in words, then ``questions`` question/answer turns."""
        scene = make_scene(config, index)
        refs = captions(scene)
        description = refs[int(rng.integers(len(refs)))]
        messages: list[dict[str, str]] = []
        for turn in range(self.questions):
            # The first question is the scene's own (`make_question`, no draw from ``rng``): with
            # one question per scene this is the corpus the shipped weights were trained on.
            q = make_question(config, scene) if turn == 0 else ask(config, scene, rng)
            user = f"{description}. {q.text}" if turn == 0 else q.text
            messages.append({"role": "user", "content": user})
            messages.append({"role": "assistant", "content": q.answers[0]})
        return messages

    def batch(self, seed: int, step: int, batch: int) -> list[list[int]]:
        """Token ids of step ``step``'s sequences (BOS ... EOS)."""
        rng = np.random.default_rng([seed, step, 11])
        rows = []
        for j in range(batch):
            config = self.configs[int(rng.integers(len(self.configs)))]
            index = TEXT_INDEX_OFFSET + step * batch + j
            rows.append(self.tokens(self.conversation(config, index, rng)))
        return rows


def collate_text(rows: list[list[int]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded ids; labels are the ids themselves (loss on every real token)."""
    import torch

    length = max(len(r) for r in rows)
    ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
    labels = torch.full_like(ids, -100)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        labels[i, : len(r)] = torch.tensor(r)
    return {"input_ids": ids, "labels": labels}


class MixedStream:
    """Image examples from a weighted mixture of scene configs, questions or captions.

    Row ``j`` of step ``s`` is scene ``TRAIN_INDEX_OFFSET + s * batch + j`` of the config
    drawn for it; the config, the caption/question split and the caption paraphrase come
    from a generator seeded with ``(seed, s)``.
    """

    def __init__(
        self,
        configs: Sequence[ShapesConfig],
        weights: Sequence[float],
        cache: PromptCache,
        vqa_template: str,
        caption_prompt: str,
    ) -> None:
        if len(configs) != len(weights) or not configs:
            raise ValueError("one weight per scene config")
        sizes = {c.image_size for c in configs}
        if len(sizes) != 1:
            raise ValueError(f"scene configs must share one image size, got {sorted(sizes)}")
        self.configs = list(configs)
        self.weights = np.asarray(weights, dtype=float) / float(np.sum(weights))
        self.cache = cache
        self.vqa_template = vqa_template
        self.caption_prompt = caption_prompt
        self.image_size = sizes.pop()

    def batch(
        self, seed: int, step: int, batch: int, caption_share: float
    ) -> tuple[list[Example], np.ndarray]:
        """Examples of step ``step`` and their images (uint8, B x H x W x 3)."""
        rng = np.random.default_rng([seed, step, 13])
        examples, images = [], []
        for j in range(batch):
            config = self.configs[int(rng.choice(len(self.configs), p=self.weights))]
            scene = make_scene(config, TRAIN_INDEX_OFFSET + step * batch + j)
            images.append(np.asarray(render(scene, self.image_size)))
            if rng.random() < caption_share:
                refs = captions(scene)
                prompt = self.cache.prompt(self.caption_prompt)
                target = self.cache.target(refs[int(rng.integers(len(refs)))])
            else:
                q = make_question(config, scene)
                prompt = self.cache.prompt(render_prompt(self.vqa_template, q.text, None, ""))
                target = self.cache.target(q.answers[0])
            examples.append(Example(j, prompt, target))
        return examples, np.stack(images)

"""The demo model's tokenizer and its real `LlavaProcessor`, built offline.

No tokenizer can be downloaded here, so a word-level one is made from the fixed vocabulary of
the prompts, questions, answers and captions. It is wrapped in the same classes a real
LLaVA-1.5 checkpoint uses (`PreTrainedTokenizerFast`, `CLIPImageProcessor`, `LlavaProcessor`)
so the analysis code sees the demo through exactly the code path of a real model: the chat
template puts a realistic system prompt first, the processor expands ``<image>`` into the
model's 16 image tokens, and groups are found from token ids.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from cliffscope.tasks.shapes import vocabulary

if TYPE_CHECKING:
    from transformers import LlavaProcessor, PreTrainedTokenizerFast

#: Vicuna v1 system prompt, as LLaVA-1.5 was trained with.
SYSTEM_PROMPT = (
    "A chat between a curious human and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the human's questions."
)
IMAGE_TOKEN = "<image>"
BOS, EOS, PAD, UNK = "<s>", "</s>", "<pad>", "<unk>"
SPECIAL_TOKENS = (PAD, BOS, EOS, UNK, IMAGE_TOKEN)

#: LLaVA-1.5 conversation format "<system> USER: <image>\n<question> ASSISTANT: <answer></s>".
#: A system message replaces the default system prompt; images come before the user's text.
CHAT_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}"
    "{% set system = messages[0]['content'] if messages[0]['content'] is string "
    "else (messages[0]['content'] | selectattr('type', 'equalto', 'text') | map(attribute='text') "
    "| join(' ')) %}{% set loop_messages = messages[1:] %}"
    "{% else %}{% set system = '" + SYSTEM_PROMPT.replace("'", "\\'") + "' %}"
    "{% set loop_messages = messages %}{% endif %}"
    "{{ system }}"
    "{% for message in loop_messages %}"
    "{{ ' ' + message['role'].upper() + ':' }}"
    "{% if message['content'] is string %}{{ ' ' + message['content'] }}{% else %}"
    "{% set images = message['content'] | selectattr('type', 'equalto', 'image') | list %}"
    "{% for item in images %}{{ ' <image>\n' }}{% endfor %}"
    "{% for item in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{{ ('' if images and loop.first else ' ') + item['text'] }}{% endfor %}{% endif %}"
    "{% if message['role'] == 'assistant' %}{{ '</s>' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ ' ASSISTANT:' }}{% endif %}"
)

#: Words of the chat wrapper that are not in the task vocabulary.
_WRAPPER_TEXT = SYSTEM_PROMPT + " USER: ASSISTANT: SYSTEM:"


def _split_words(text: str) -> list[str]:
    """The same split the tokenizer's `Whitespace` pre-tokenizer makes (\\w+ | punctuation)."""
    return re.findall(r"\w+|[^\w\s]+", text)


def build_tokenizer(extra_texts: Iterable[str] = ()) -> PreTrainedTokenizerFast:
    """Word-level tokenizer over the demo vocabulary; adds BOS like the LLaVA-1.5 tokenizer.

    ``extra_texts`` adds the words of the tasks' prompt templates (``{...}`` fields dropped),
    e.g. "Answer the question using a single word or phrase.".
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    extra = [w for t in extra_texts for w in _split_words(re.sub(r"\{\w*\}", " ", t))]
    words = set(_split_words(_WRAPPER_TEXT)) | set(vocabulary()) | set(extra)
    words = sorted(words | {"?", ".", ",", ":"})
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    for w in words:
        vocab.setdefault(w, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, vocab[BOS])]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        extra_special_tokens={"image_token": IMAGE_TOKEN},
        padding_side="left",
        clean_up_tokenization_spaces=False,
        model_max_length=512,
    )
    fast.add_special_tokens({"additional_special_tokens": [IMAGE_TOKEN]})
    return fast


def build_processor(
    image_size: int = 64, patch_size: int = 16, extra_texts: Iterable[str] = ()
) -> LlavaProcessor:
    """The real `LlavaProcessor`; one CLS token is dropped ("default"), as in LLaVA-1.5."""
    from transformers import CLIPImageProcessor, LlavaProcessor

    image_processor = CLIPImageProcessor(
        size={"shortest_edge": image_size},
        crop_size={"height": image_size, "width": image_size},
    )
    return LlavaProcessor(
        image_processor=image_processor,
        tokenizer=build_tokenizer(extra_texts),
        patch_size=patch_size,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=CHAT_TEMPLATE,
    )


def conversation(question: str, system: str | None = None) -> list[dict]:
    """A one-turn conversation with one image, in the format `apply_chat_template` takes."""
    messages: list[dict] = []
    if system is not None:
        messages.append({"role": "system", "content": [{"type": "text", "text": system}]})
    messages.append(
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}
    )
    return messages

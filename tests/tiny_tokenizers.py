"""Offline tokenizers and chat templates for the tiny test checkpoints.

A word-level `tokenizers` model over a small vocabulary plus a family's special tokens, wrapped
in `PreTrainedTokenizerFast`, and chat templates shaped like the real checkpoints' (LLaVA-1.5
"USER: <image>\n... ASSISTANT:", LLaVA-NeXT-Mistral "[INST] ... [/INST]", Qwen2-VL ChatML).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

#: Words every tiny tokenizer knows (prompts in tests should stay inside this vocabulary;
#: anything else becomes the unknown token, which is harmless but less telling).
_WORD_TEXT = """
    what is the colour color of shape in this image picture describe answer a an one word
    red green blue yellow white black purple orange circle square triangle star
    yes no left right top bottom there how many are it and or which on
    you helpful assistant user system chat between curious human artificial intelligence
    gives polite answers to questions detailed s please briefly
    0 1 2 3 4 5 6 7 8 9
"""
WORDS: tuple[str, ...] = tuple(_WORD_TEXT.split())
PUNCT: tuple[str, ...] = tuple(".,?!:;'\"()[]/-<>")  # one token per character

# --- chat templates, shaped like the real checkpoints' ------------------------------------

LLAVA_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] != 'system' %}{{ message['role'].upper() + ': '}}{% endif %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}"
    "{{ '<image>\n' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{{ content['text'] + ' '}}{% endfor %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)

LLAVA_NEXT_TEMPLATE = (  # llava-v1.6-mistral style
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}"
    "{{ '<<SYS>>\n' + message['content'][0]['text'] + '\n<</SYS>>\n\n' }}"
    "{% elif message['role'] == 'user' %}{{ '[INST] ' }}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}"
    "{{ '<image>\n' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{{ content['text'] }}{% endfor %}{{ ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}"
    "{{ ' ' + message['content'][0]['text'] + '</s> ' }}{% endif %}"
    "{% endfor %}"
)

QWEN2_VL_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

LLAMA_SPECIALS = ["<unk>", "<s>", "</s>", "<pad>", "<image>"]
QWEN_SPECIALS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
    "<unk>",
]


def make_word_tokenizer(
    specials: list[str],
    *,
    unk: str,
    pad: str,
    eos: str,
    bos: str | None = None,
    words: Iterable[str] = WORDS,
    extra_words: Iterable[str] = (),
    extra: dict[str, Any] | None = None,
) -> PreTrainedTokenizerFast:
    """A word-level fast tokenizer: specials first (ids 0..), then punctuation and words.

    Words split on whitespace and punctuation; a leading BOS is added when `bos` is given
    (like Llama's tokenizer). Template words (USER, ASSISTANT, INST, im_start roles ...) are in
    the vocabulary, so rendered prompts tokenize without unknowns.
    """
    template_words = ["USER", "ASSISTANT", "INST", "SYS", "You", "\n"]
    vocab: dict[str, int] = {}
    all_words = [*words, *extra_words]
    all_words += [w.capitalize() for w in all_words]  # sentence-initial "What", "Describe" ...
    for tok in [*specials, *PUNCT, *template_words, *all_words]:
        vocab.setdefault(tok, len(vocab))
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=unk))
    core.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()]
    )
    core.add_special_tokens(specials)
    if bos is not None:
        core.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, vocab[bos])]
        )
    kwargs: dict[str, Any] = {"unk_token": unk, "pad_token": pad, "eos_token": eos}
    if bos is not None:
        kwargs["bos_token"] = bos
    kwargs.update(extra or {})
    return PreTrainedTokenizerFast(tokenizer_object=core, **kwargs)

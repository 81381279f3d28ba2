"""Offline tokenizers and chat templates for the tiny test checkpoints.

A word-level `tokenizers` model over a small vocabulary plus a family's special tokens, wrapped
in `PreTrainedTokenizerFast`, and chat templates shaped like the real checkpoints' (LLaVA-1.5
"USER: <image>\n... ASSISTANT:", LLaVA-NeXT-Mistral "[INST] ... [/INST]", Qwen2-VL ChatML, and
the OneVision, Qwen3-VL, InternVL, Gemma 3, Idefics3, SmolVLM and Mistral3 families').
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tokenizers import Regex, Tokenizer, models, pre_tokenizers, processors
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

# --- the 2026 families (`conformance/families.py`), shaped like their released templates -------

ONEVISION_TEMPLATE = (  # llava-onevision-qwen2: images first, then text, ChatML turns
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + ' ' }}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}"
    "{{ '<image>' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{{ '\n' + content['text'] }}{% endfor %}{{ '<|im_end|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

QWEN3_VL_TEMPLATE = (  # Qwen3-VL-Instruct: ChatML without a default system turn
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

INTERNVL_TEMPLATE = (  # InternVL3-hf: default system turn, "<IMG_CONTEXT>\n" per image
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}{{ '<IMG_CONTEXT>\n' }}"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}"
    "{% endfor %}{% endif %}{{ '<|im_end|>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

GEMMA3_TEMPLATE = (  # gemma-3-it: writes BOS itself; the tokenizer adds another
    "{{ bos_token }}"
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- set first_user_prefix = messages[0]['content'][0]['text'] + '\n\n' -%}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}{%- set first_user_prefix = '' -%}{%- set loop_messages = messages -%}"
    "{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}"
    "{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else '') }}"
    "{%- if message['content'] is string -%}{{ message['content'] | trim }}"
    "{%- else -%}{%- for item in message['content'] -%}"
    "{%- if item['type'] == 'image' -%}{{ '<start_of_image>' }}"
    "{%- elif item['type'] == 'text' -%}{{ item['text'] | trim }}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{{ '<end_of_turn>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}"
)

_IDEFICS_TURNS = (  # "User:<image>What colour?<end_of_utterance>\nAssistant:"
    "{% for message in messages %}{{ message['role'] | capitalize }}"
    "{% if message['content'][0]['type'] == 'image' %}{{ ':' }}{% else %}{{ ': ' }}{% endif %}"
    "{% for line in message['content'] %}"
    "{% if line['type'] == 'text' %}{{ line['text'] }}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}"
    "{% endfor %}<end_of_utterance>\n{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)
IDEFICS3_TEMPLATE = "<|begin_of_text|>" + _IDEFICS_TURNS  # and the Llama-3 tokenizer adds BOS
SMOLVLM_TEMPLATE = "<|im_start|>" + _IDEFICS_TURNS  # the SmolLM2 tokenizer adds none

MISTRAL3_TEMPLATE = (  # Mistral-Small-3.1: BOS, a default system prompt, [INST] ... [/INST]
    "{{ bos_token }}"
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- set system_message = messages[0]['content'][0]['text'] -%}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}{%- set system_message = 'You are a helpful assistant.' -%}"
    "{%- set loop_messages = messages -%}{%- endif -%}"
    "{{ '[SYSTEM_PROMPT]' + system_message + '[/SYSTEM_PROMPT]' }}"
    "{%- for message in loop_messages -%}"
    "{%- if message['role'] == 'user' -%}{{ '[INST]' }}"
    "{%- for block in message['content'] -%}"
    "{%- if block['type'] == 'text' -%}{{ block['text'] }}"
    "{%- elif block['type'] == 'image' -%}{{ '[IMG]' }}{%- endif -%}"
    "{%- endfor -%}{{ '[/INST]' }}"
    "{%- elif message['role'] == 'assistant' -%}"
    "{{ message['content'][0]['text'] + eos_token }}{%- endif -%}"
    "{%- endfor -%}"
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

ONEVISION_SPECIALS = [*QWEN_SPECIALS, "<image>", "<video>"]
INTERNVL_SPECIALS = [*QWEN_SPECIALS, "<img>", "</img>", "<IMG_CONTEXT>", "<video>"]
GEMMA3_SPECIALS = [
    "<pad>",
    "<eos>",
    "<bos>",
    "<unk>",
    "<start_of_turn>",
    "<end_of_turn>",
    "<start_of_image>",
    "<end_of_image>",
    "<image_soft_token>",
]
#: Idefics3 / SmolVLM: the tile markers the processor writes inside an image span
IDEFICS_IMAGE_SPECIALS = [
    "<fake_token_around_image>",
    "<image>",
    "<global-img>",
    "<end_of_utterance>",
    *(f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7)),
]
IDEFICS3_SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<unk>", *IDEFICS_IMAGE_SPECIALS]
SMOLVLM_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<unk>", "<video>", *IDEFICS_IMAGE_SPECIALS]
MISTRAL3_SPECIALS = [
    "<unk>",
    "<s>",
    "</s>",
    "<pad>",
    "[INST]",
    "[/INST]",
    "[SYSTEM_PROMPT]",
    "[/SYSTEM_PROMPT]",
    "[IMG]",
    "[IMG_BREAK]",
    "[IMG_END]",
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
    newlines: bool = False,
    cls: type[PreTrainedTokenizerFast] = PreTrainedTokenizerFast,
) -> PreTrainedTokenizerFast:
    """A word-level fast tokenizer: specials first (ids 0..), then punctuation and words.

    Words split on whitespace and punctuation; a leading BOS is added when `bos` is given
    (like Llama's tokenizer). Template words (USER, ASSISTANT, INST, im_start roles ...) are in
    the vocabulary, so rendered prompts tokenize without unknowns. With `newlines`, every "\n"
    is a token of its own (the separators some processors put inside an image span); without,
    newlines vanish like other whitespace. `extra` names special-token attributes
    (``image_token`` ...), passed as ``extra_special_tokens`` so 4.x and 5.x both set them.
    Like real LLM tokenizers it returns no ``token_type_ids`` (4.x's generic class would, and
    ``generate`` rejects them). `cls` wraps the core in a family's own fast class, for 4.x
    processors that check it.
    """
    template_words = ["USER", "ASSISTANT", "INST", "SYS", "You", "\n"]
    vocab: dict[str, int] = {}
    all_words = [*words, *extra_words]
    all_words += [w.capitalize() for w in all_words]  # sentence-initial "What", "Describe" ...
    for tok in [*specials, *PUNCT, *template_words, *all_words]:
        vocab.setdefault(tok, len(vocab))
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=unk))
    splits: list[Any] = [pre_tokenizers.WhitespaceSplit()]
    if newlines:  # drop other whitespace, keep each "\n" as a piece
        splits = [
            pre_tokenizers.Split(Regex(r"[^\S\n]+"), behavior="removed"),
            pre_tokenizers.Split("\n", behavior="isolated"),
        ]
    core.pre_tokenizer = pre_tokenizers.Sequence([*splits, pre_tokenizers.Punctuation()])
    core.add_special_tokens(specials)
    if bos is not None:
        core.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, vocab[bos])]
        )
    kwargs: dict[str, Any] = {
        "unk_token": unk,
        "pad_token": pad,
        "eos_token": eos,
        "model_input_names": ["input_ids", "attention_mask"],
    }
    if bos is not None:
        kwargs["bos_token"] = bos
    if extra:
        kwargs["extra_special_tokens"] = dict(extra)
    return cls(tokenizer_object=core, **kwargs)

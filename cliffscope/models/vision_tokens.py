"""Which token ids mark vision content, read off a checkpoint's config and processor.

Image and video placeholders, begin/end-of-image markers and the separators inside an image run
are never valid answer tokens (a raw decoder happily emits `<image>` or `<|image_pad|>`, and a
teacher-forced answer holding one would be read as a second image). Families name them
differently — `image_token_id`, `image_token_index`, `vision_start_token_id`, `boi_token_index`,
a processor's `image_token`, `fake_image_token`, `image_break_token` … — so they are found by
name: every id-valued attribute of the model config and every token-valued attribute of the
processor whose name speaks of images, video or vision.
"""

from __future__ import annotations

import re
from typing import Any

_VISION_NAME = re.compile(r"(image|video|vision|visual|boi|eoi|img|patch)", re.IGNORECASE)
_ID_NAME = re.compile(r"_token_(id|index)$")
_TOKEN_NAME = re.compile(r"_token$")


def _config_ids(config: Any) -> list[int]:
    ids: list[int] = []
    configs = [config, *(getattr(config, key, None) for key in getattr(config, "sub_configs", {}))]
    for cfg in configs:
        if cfg is None:
            continue
        for name, value in vars(cfg).items():
            if _ID_NAME.search(name) and _VISION_NAME.search(name) and isinstance(value, int):
                ids.append(value)
    return ids


def _processor_ids(processor: Any, tokenizer: Any) -> list[int]:
    ids: list[int] = []
    unk = getattr(tokenizer, "unk_token_id", None)
    for name in dir(processor):
        if name.startswith("_") or not _VISION_NAME.search(name):
            continue
        try:
            value = getattr(processor, name)
        except Exception:  # noqa: BLE001 - properties of half-initialised processors
            continue
        if _ID_NAME.search(name) and isinstance(value, int):
            ids.append(value)
        elif _TOKEN_NAME.search(name) and isinstance(value, str) and value:
            token_id = tokenizer.convert_tokens_to_ids(value)
            if isinstance(token_id, int) and token_id != unk:
                ids.append(token_id)
    return ids


def vision_token_ids(config: Any, processor: Any, tokenizer: Any) -> list[int]:
    """Sorted, unique vision-marker ids of a checkpoint (see module docstring)."""
    found = _config_ids(config) + _processor_ids(processor, tokenizer)
    return sorted({i for i in found if i >= 0})

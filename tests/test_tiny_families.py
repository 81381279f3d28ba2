"""The tiny 2026-family checkpoints load like released ones and lay out image tokens the way the
engines will assume: the count of image-token positions per prompt follows from the processor's
outputs (grids, tile counts, image sizes), the markers around and inside each image span sit where
the family puts them, the image changes the logits, and `generate` runs on a left-padded batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

from tests.tiny_family_layouts import (
    FAMILIES,
    IMAGES,
    OTHER_IMAGES,
    FamilyLoader,
    Loaded,
    image_runs,
)

pytestmark = pytest.mark.slow


@pytest.fixture(params=list(FAMILIES))
def loaded(request: pytest.FixtureRequest, tiny_family: FamilyLoader) -> Loaded:
    return tiny_family(request.param)


def test_template_writes_one_image_marker_and_the_generation_prompt(loaded: Loaded) -> None:
    tok = loaded.processor.tokenizer
    prompt = loaded.prompts[0]
    # Gemma 3's template writes <start_of_image>: 5.x calls it `image_token`, 4.57 `boi_token`
    marker = getattr(loaded.processor, "boi_token", None) or loaded.processor.image_token
    assert prompt.count(marker) == 1
    assert "What colour?" in prompt
    ids = tok(prompt)["input_ids"]
    assert tok.unk_token_id not in ids, tok.convert_ids_to_tokens(ids)
    if loaded.family.template_bos:  # engines must tokenize rendered prompts without specials
        assert ids[:2] == [tok.bos_token_id] * 2
        assert tok(prompt, add_special_tokens=False)["input_ids"][:2] != ids[:2]
    else:
        assert ids[0] != tok.bos_token_id or tok.bos_token_id is None


def test_image_token_count_follows_the_processor_outputs(loaded: Loaded) -> None:
    assert loaded.ids(loaded.family.image_token) == [loaded.image_id]
    enc = loaded.encode(IMAGES)
    counts = (enc["input_ids"] == loaded.image_id).sum(-1).tolist()
    assert counts == loaded.family.count(enc, loaded.processor, loaded.model.config)
    if not loaded.family.square:  # the two aspect ratios give different grids
        assert counts[0] != counts[1]
    assert enc["attention_mask"][:, -1].all() and not enc["attention_mask"][:, 0].all()


def test_generate_runs_on_the_padded_batch(loaded: Loaded) -> None:
    enc = loaded.encode(IMAGES)
    with torch.no_grad():
        out = loaded.model.generate(**enc, max_new_tokens=3, do_sample=False)
    assert out.shape == (2, enc["input_ids"].shape[1] + 3)
    assert torch.equal(out[:, : enc["input_ids"].shape[1]], enc["input_ids"])


def test_the_image_changes_the_logits(loaded: Loaded) -> None:
    with torch.no_grad():
        first = loaded.model(**loaded.encode(IMAGES)).logits[:, -1]
        again = loaded.model(**loaded.encode(IMAGES)).logits[:, -1]
        other = loaded.model(**loaded.encode(OTHER_IMAGES)).logits[:, -1]
    assert torch.equal(first, again)
    assert (first - other).abs().amax(-1).min() > 1e-4


# --- markers around and inside the image span ------------------------------------------------


def test_markers_sit_where_the_family_puts_them(loaded: Loaded) -> None:
    MARKERS[loaded.name](loaded, loaded.encode(IMAGES))


def _one_run_between(loaded: Loaded, enc: Any, before: str, after: str) -> None:
    """One contiguous image run per prompt, framed by `before` and `after` (OneVision has no
    markers: base view, tiles and newline features all carry the image token id)."""
    first, last = loaded.ids(before, after)
    for row in enc["input_ids"]:
        ((start, end),) = image_runs(row, loaded.image_id)
        assert (row[start - 1].item(), row[end].item()) == (first, last)


def _idefics_markers(loaded: Loaded, enc: Any) -> None:
    """One run per view: <fake><row_r_col_c> before each tile (row-major), "\n" after the last
    column of a tile row, then <fake><global-img> ... <fake> around the global view."""
    tok = loaded.processor.tokenizer
    fake, newline = loaded.ids("<fake_token_around_image>", "\n")
    cfg = loaded.model.config
    per_view = (
        cfg.vision_config.image_size // cfg.vision_config.patch_size // cfg.scale_factor
    ) ** 2
    for row in enc["input_ids"]:
        runs = image_runs(row, loaded.image_id)
        assert all(end - start == per_view for start, end in runs)
        assert all(row[start - 2].item() == fake for start, _ in runs)
        labels = tok.convert_ids_to_tokens([row[start - 1].item() for start, _ in runs])
        assert labels[-1] == "<global-img>" and row[runs[-1][1]].item() == fake
        tiles = [tuple(int(x) for x in label[5:-1].split("_col_")) for label in labels[:-1]]
        n_rows, n_cols = max(r for r, _ in tiles), max(c for _, c in tiles)
        assert n_rows * n_cols > 1  # tiling is on for both test images
        assert tiles == [(r, c) for r in range(1, n_rows + 1) for c in range(1, n_cols + 1)]
        row_ends = [runs[i][1] for i, (_, c) in enumerate(tiles) if c == n_cols]
        assert all(row[end].item() == newline for end in row_ends)


def _mistral3_markers(loaded: Loaded, enc: Any) -> None:
    """One [IMG] run per merged patch row, [IMG_BREAK] after each but the last, then [IMG_END]."""
    brk, end = loaded.ids("[IMG_BREAK]", "[IMG_END]")
    step = loaded.model.config.vision_config.patch_size * loaded.model.config.spatial_merge_size
    for row, (h, w) in zip(enc["input_ids"], enc["image_sizes"].tolist(), strict=True):
        runs = image_runs(row, loaded.image_id)
        assert [e - s for s, e in runs] == [w // step] * (h // step)
        assert [row[e].item() for _, e in runs] == [brk] * (h // step - 1) + [end]
        assert all(runs[i + 1][0] == runs[i][1] + 1 for i in range(len(runs) - 1))


MARKERS: dict[str, Callable[[Loaded, Any], None]] = {
    "llava-onevision": lambda lo, enc: _one_run_between(lo, enc, "user", "\n"),
    "qwen3-vl": lambda lo, enc: _one_run_between(lo, enc, "<|vision_start|>", "<|vision_end|>"),
    "internvl": lambda lo, enc: _one_run_between(lo, enc, "<img>", "</img>"),
    "gemma3": lambda lo, enc: _one_run_between(lo, enc, "<start_of_image>", "<end_of_image>"),
    "idefics3": _idefics_markers,
    "smolvlm": _idefics_markers,
    "mistral3": _mistral3_markers,
}

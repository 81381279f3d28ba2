"""The tiny 2026-family checkpoints load like released ones and lay out image tokens the way the
engines will assume: the count of image-token positions per prompt follows from the processor's
outputs (grids, tile counts, image sizes), the markers around and inside each image span sit where
the family puts them, the image changes the logits, and `generate` runs on a left-padded batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from tests import tiny_families

pytestmark = pytest.mark.slow


def _question(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]


#: one image turn per prompt; the second is longer, so a batch is left-padded in every family
QUESTIONS = [_question("What colour?"), _question("What colour is the shape in this image?")]


def _noise(height: int, width: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


#: a landscape 3:2 and a portrait 1:3 image (height x width), and a second draw of each
IMAGES = [_noise(32, 48, 0), _noise(48, 16, 1)]
OTHER_IMAGES = [_noise(32, 48, 2), _noise(48, 16, 3)]


# --- the count of image tokens per prompt, derived from each processor's outputs -------------


def onevision_grids(enc: Any, cfg: Any) -> list[tuple[int, int, int]]:
    """(side, rows, cols) per image: a side x side base view, then the anyres tiles' feature
    grid unpadded to the image's aspect ratio (rows x cols)."""
    from transformers.image_processing_utils import select_best_resolution

    tile = cfg.vision_config.image_size
    side = tile // cfg.vision_config.patch_size
    grids = []
    for h, w in enc["image_sizes"].tolist():
        best_h, best_w = select_best_resolution([h, w], cfg.image_grid_pinpoints)
        rows, cols = side * best_h // tile, side * best_w // tile
        if w / h > cols / rows:
            rows -= 2 * ((rows - int(round(h * cols / w, 7))) // 2)
        else:
            cols -= 2 * ((cols - int(round(w * rows / h, 7))) // 2)
        grids.append((side, rows, cols))
    return grids


def _onevision(enc: Any, proc: Any, cfg: Any) -> list[int]:
    """The base view, then each unpadded row followed by one newline feature."""
    return [side * side + rows * (cols + 1) for side, rows, cols in onevision_grids(enc, cfg)]


def _qwen3_vl(enc: Any, proc: Any, cfg: Any) -> list[int]:
    merge = cfg.vision_config.spatial_merge_size
    return (enc["image_grid_thw"].prod(-1) // merge**2).tolist()


def _internvl(enc: Any, proc: Any, cfg: Any) -> list[int]:
    """Tiles (cols x rows chosen by aspect ratio) plus a thumbnail when there is more than one,
    each pixel-shuffled to (side/2)^2 tokens."""
    from transformers.models.got_ocr2.image_processing_got_ocr2 import get_optimal_tiled_canvas

    ip = proc.image_processor
    tile = (ip.size["height"], ip.size["width"])
    views = []
    for image in IMAGES:
        cols, rows = get_optimal_tiled_canvas(
            (image.height, image.width), tile, ip.min_patches, ip.max_patches
        )
        views.append(cols * rows + (cols * rows > 1))
    assert sum(views) == enc["pixel_values"].shape[0]
    side = cfg.vision_config.image_size[0] // cfg.vision_config.patch_size[0]
    return [n * int(side * cfg.downsample_ratio) ** 2 for n in views]


def _gemma3(enc: Any, proc: Any, cfg: Any) -> list[int]:
    return [cfg.mm_tokens_per_image] * enc["input_ids"].shape[0]


def _idefics(enc: Any, proc: Any, cfg: Any) -> list[int]:
    """Every real view (tiles + global image; padding views are all zero) gives (side/scale)^2."""
    real = enc["pixel_values"].flatten(2).ne(0).any(-1).sum(-1)
    side = cfg.vision_config.image_size // cfg.vision_config.patch_size
    return (real * (side // cfg.scale_factor) ** 2).tolist()


def _mistral3(enc: Any, proc: Any, cfg: Any) -> list[int]:
    step = cfg.vision_config.patch_size * cfg.spatial_merge_size
    return [(h // step) * (w // step) for h, w in enc["image_sizes"].tolist()]


@dataclass(frozen=True)
class Family:
    builder: Callable[..., Path]
    model_class: str
    image_token: str
    count: Callable[[Any, Any, Any], list[int]]
    nested: bool = False  # the processor wants one list of images per prompt
    template_bos: bool = False  # the template writes BOS and the tokenizer adds another
    square: bool = False  # every image is resized to one fixed grid
    needs: str | None = None


FAMILIES = {
    "llava-onevision": Family(
        tiny_families.build_tiny_llava_onevision, "LlavaOnevisionForConditionalGeneration",
        "<image>", _onevision,
    ),
    "qwen3-vl": Family(
        tiny_families.build_tiny_qwen3_vl, "Qwen3VLForConditionalGeneration",
        "<|image_pad|>", _qwen3_vl,
    ),
    "internvl": Family(
        tiny_families.build_tiny_internvl, "InternVLForConditionalGeneration",
        "<IMG_CONTEXT>", _internvl,
    ),
    "gemma3": Family(
        tiny_families.build_tiny_gemma3, "Gemma3ForConditionalGeneration",
        "<image_soft_token>", _gemma3, nested=True, template_bos=True, square=True,
    ),
    "idefics3": Family(
        tiny_families.build_tiny_idefics3, "Idefics3ForConditionalGeneration",
        "<image>", _idefics, template_bos=True,
    ),
    "smolvlm": Family(
        tiny_families.build_tiny_smolvlm, "SmolVLMForConditionalGeneration",
        "<image>", _idefics, nested=True, needs="num2words",
    ),
    "mistral3": Family(
        tiny_families.build_tiny_mistral3, "Mistral3ForConditionalGeneration",
        "[IMG]", _mistral3, template_bos=True,
    ),
}  # fmt: skip


@dataclass
class Loaded:
    name: str
    family: Family
    model: Any
    processor: Any
    prompts: list[str]

    @property
    def image_id(self) -> int:
        cfg = self.model.config
        return getattr(cfg, "image_token_id", None) or cfg.image_token_index

    def encode(self, images: list[Image.Image], **kwargs: Any) -> Any:
        batch = [[image] for image in images] if self.family.nested else images
        return self.processor(
            text=self.prompts[: len(images)], images=batch, padding=True,
            padding_side="left", return_tensors="pt", **kwargs,
        )  # fmt: skip

    def ids(self, *tokens: str) -> list[int]:
        return [self.processor.tokenizer.convert_tokens_to_ids(t) for t in tokens]


@pytest.fixture(scope="module")
def load(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Loaded]:
    """Build, save and reload a family once per module; later calls reuse it."""
    import transformers
    from transformers import AutoModelForImageTextToText, AutoProcessor

    cache: dict[str, Loaded] = {}

    def get(name: str) -> Loaded:
        if name not in cache:
            family = FAMILIES[name]
            if family.needs:
                pytest.importorskip(family.needs, reason=f"the {name} processor needs it")
            path = family.builder(tmp_path_factory.mktemp(name) / "model")
            model = AutoModelForImageTextToText.from_pretrained(path).eval()
            assert type(model) is getattr(transformers, family.model_class)
            processor = AutoProcessor.from_pretrained(path)
            prompts = [
                processor.apply_chat_template(q, add_generation_prompt=True, tokenize=False)
                for q in QUESTIONS
            ]
            cache[name] = Loaded(name, family, model, processor, prompts)
        return cache[name]

    return get


@pytest.fixture(params=list(FAMILIES))
def loaded(request: pytest.FixtureRequest, load: Callable[[str], Loaded]) -> Loaded:
    return load(request.param)


def _runs(row: torch.Tensor, token_id: int) -> list[tuple[int, int]]:
    """(start, end) of each maximal run of `token_id` in a 1-D id tensor."""
    hit = torch.cat([torch.tensor([False]), row == token_id, torch.tensor([False])]).int()
    edges = hit.diff()
    return list(
        zip(
            edges.eq(1).nonzero().flatten().tolist(),
            edges.eq(-1).nonzero().flatten().tolist(),
            strict=True,
        )
    )


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
        ((start, end),) = _runs(row, loaded.image_id)
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
        runs = _runs(row, loaded.image_id)
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
        runs = _runs(row, loaded.image_id)
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


# --- family specifics the engines rely on ----------------------------------------------------


def _capture(module: torch.nn.Module, store: list, *, pre: bool = False) -> Any:
    """Record a copy of a module's first input (pre) or of its output tensor, per call (4.57's
    deepstack adds into the layer's output tensor in place; 5.x adds into a clone)."""
    if pre:
        return module.register_forward_pre_hook(
            lambda m, args, kwargs: store.append(
                (args[0] if args else kwargs["hidden_states"]).clone()
            ),
            with_kwargs=True,
        )
    return module.register_forward_hook(
        lambda m, args, out: store.append((out[0] if isinstance(out, tuple) else out).clone())
    )


def test_onevision_newline_features_close_each_tile_row(load: Callable[[str], Loaded]) -> None:
    """In the image run: side*side base features, then rows of `cols` features + the learned
    image_newline vector (same image token id, so only the embeddings tell them apart)."""
    loaded = load("llava-onevision")
    core = loaded.model.model
    seen: list = []
    handle = core.language_model.register_forward_pre_hook(
        lambda m, args, kwargs: seen.append(kwargs["inputs_embeds"]), with_kwargs=True
    )
    enc = loaded.encode(IMAGES)
    try:
        with torch.no_grad():
            loaded.model(**enc)
    finally:
        handle.remove()
    grids = onevision_grids(enc, loaded.model.config)
    for embeds, row, (side, rows, cols) in zip(seen[0], enc["input_ids"], grids, strict=True):
        image = embeds[row == loaded.image_id]
        is_newline = (image == core.image_newline).all(-1)
        expected = torch.zeros(side * side + rows * (cols + 1), dtype=torch.bool)
        expected[side * side + cols :: cols + 1] = True
        assert torch.equal(is_newline, expected)


def test_qwen3_vl_deepstack_adds_to_image_rows_after_the_first_layers(
    load: Callable[[str], Loaded],
) -> None:
    """Deepstack features are added to the image positions of the hidden states *between*
    decoder layers i and i+1 for i < len(deepstack_visual_indexes), outside the layers."""
    loaded = load("qwen3-vl")
    text = loaded.model.model.language_model
    layers = list(text.layers)
    outs: list = []
    ins: list = []
    hooks = [_capture(layer, outs) for layer in layers]
    hooks += [_capture(layer, ins, pre=True) for layer in layers[1:]] + [
        _capture(text.norm, ins, pre=True)
    ]
    enc = loaded.encode(IMAGES)
    try:
        with torch.no_grad():
            loaded.model(**enc)
    finally:
        for hook in hooks:
            hook.remove()
    image = enc["input_ids"] == loaded.image_id
    injected = []
    for i, (out, nxt) in enumerate(zip(outs, ins, strict=True)):
        changed = (out != nxt).any(-1)
        assert not (changed & ~image).any()
        if changed.any():
            assert torch.equal(changed, image)
            injected.append(i)
    assert injected == list(range(len(loaded.model.config.vision_config.deepstack_visual_indexes)))


def test_gemma3_mixes_window_and_global_layers_with_their_own_rope(
    load: Callable[[str], Loaded],
) -> None:
    loaded = load("gemma3")
    text = loaded.model.config.text_config
    enc = loaded.encode(IMAGES)
    assert {"sliding_attention", "full_attention"} == set(text.layer_types)
    assert text.sliding_window < enc["input_ids"].shape[1] // 2
    lm = loaded.model.model.language_model
    if hasattr(lm, "rotary_emb_local"):  # 4.57: one rotary module per layer type
        local, full = lm.rotary_emb_local.inv_freq, lm.rotary_emb.inv_freq
    else:  # 5.x: one module holding an inv_freq buffer per layer type
        local, full = (
            lm.rotary_emb.sliding_attention_inv_freq,
            lm.rotary_emb.full_attention_inv_freq,
        )
    assert local.shape == full.shape and not torch.allclose(local, full)
    projector = loaded.model.model.multi_modal_projector.mm_input_projection_weight
    assert projector.abs().amin(-1).gt(0).all()


def test_gemma3_token_type_ids_make_image_attention_bidirectional(
    load: Callable[[str], Loaded],
) -> None:
    """Without token_type_ids the image block is causal: the first image position's logits change."""
    loaded = load("gemma3")
    enc = loaded.encode(IMAGES)
    assert torch.equal(enc["token_type_ids"].bool(), enc["input_ids"] == loaded.image_id)
    plain = {k: v for k, v in enc.items() if k != "token_type_ids"}
    first = (enc["input_ids"][0] == loaded.image_id).nonzero()[0, 0]
    with torch.no_grad():
        both_ways = loaded.model(**enc).logits[0, first]
        causal = loaded.model(**plain).logits[0, first]
    assert (both_ways - causal).abs().max() > 1e-4


def test_gemma3_pan_and_scan_adds_one_framed_run_per_crop(load: Callable[[str], Loaded]) -> None:
    """Pan and scan is off by default (as in the released processors); on, each image becomes a
    base view plus crops, each its own <start_of_image> run <end_of_image> span."""
    loaded = load("gemma3")
    # the processor's own call defaults (min crop 256 px) override the image processor's
    enc = loaded.encode(IMAGES, do_pan_and_scan=True, pan_and_scan_min_crop_size=16)
    per_image = loaded.model.config.mm_tokens_per_image
    boi, eoi = loaded.ids("<start_of_image>", "<end_of_image>")
    views = 0
    for row in enc["input_ids"]:
        runs = _runs(row, loaded.image_id)
        assert len(runs) > 1 and all(e - s == per_image for s, e in runs)
        assert all(row[s - 1].item() == boi and row[e].item() == eoi for s, e in runs)
        views += len(runs)
    assert views == enc["pixel_values"].shape[0]
    with torch.no_grad():
        loaded.model(**enc)

"""Every adapter family on a tiny offline checkpoint, loaded through `load_adapter(profile)`.

Per family: the group spans agree with the processor's own token ids, greedy generation works,
a left-padded batch answers exactly like one prompt at a time, teacher-forced answers land in
the `output` group, and the image grids cover exactly the image tokens.
"""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from cliffscope.models.base import GROUP_NAMES
from cliffscope.models.loading import load_adapter
from tests.tiny_models import tiny_profile

pytestmark = pytest.mark.slow

# family -> (checkpoint fixture, adapter family, tokens closing `system`, tokens opening
# `instruction`, tokens closing the prompt)
FAMILIES = {
    "llava": ("tiny_llava_path", "llava", ["USER", ":"], [], ["ASSISTANT", ":"]),
    "llava-next": ("tiny_llava_next_path", "llava-next", ["[", "INST", "]"], [], ["[", "/", "INST", "]"]),
    "qwen2-vl": (
        "tiny_qwen2_vl_path", "qwen2-vl", ["user", "<|vision_start|>"], ["<|vision_end|>"],
        ["<|im_start|>", "assistant"],
    ),
    "qwen2.5-vl": (
        "tiny_qwen2_5_vl_path", "qwen2.5-vl", ["user", "<|vision_start|>"], ["<|vision_end|>"],
        ["<|im_start|>", "assistant"],
    ),
    "auto": ("tiny_vipllava_path", "generic", ["USER", ":"], [], ["ASSISTANT", ":"]),
}  # fmt: skip

PROMPTS = [
    "What is the colour of the shape?",
    "Describe the image briefly",
    "How many circles are there in this picture? Answer in one word.",
]


def _images() -> list[Image.Image]:
    """Different sizes and aspect ratios, so dynamic-resolution families differ per row."""
    sizes = [(40, 30), (30, 50), (64, 64)]
    colours = [(220, 30, 30), (30, 30, 220), (30, 200, 30)]
    out = []
    for (w, h), colour in zip(sizes, colours, strict=True):
        im = Image.new("RGB", (w, h), (255, 255, 255))
        im.paste(colour, (w // 4, h // 4, 3 * w // 4, 3 * h // 4))
        out.append(im)
    return out


@pytest.fixture(scope="module", params=list(FAMILIES))
def adapter(request: pytest.FixtureRequest):
    fixture, *_ = FAMILIES[request.param]
    path = request.getfixturevalue(fixture)
    return load_adapter(tiny_profile(path, request.param))


def _family_key(adapter) -> str:
    return next(k for k, v in FAMILIES.items() if v[1] == adapter.family)


def _expected_image_tokens(adapter, batch, row: int) -> int:
    """Image-token count from the config / processor outputs, not from the token ids."""
    cfg = adapter.model.config
    if adapter.family in ("qwen2-vl", "qwen2.5-vl"):
        return int(batch.inputs["image_grid_thw"][row].prod()) // adapter.merge_size**2
    if adapter.family == "llava-next":
        image_size = batch.inputs["image_sizes"][row].tolist()
        feats = adapter.model.model.get_image_features(
            batch.inputs["pixel_values"][row : row + 1], torch.tensor([image_size])
        ).pooler_output
        return int(feats[0].shape[0])
    return (cfg.vision_config.image_size // cfg.vision_config.patch_size) ** 2


def test_family_and_architecture(adapter) -> None:
    expected_family = FAMILIES[_family_key(adapter)][1]
    assert adapter.family == expected_family
    text_cfg = adapter.model.config.get_text_config()
    assert adapter.num_layers == text_cfg.num_hidden_layers == len(adapter.decoder_layers())
    assert adapter.num_heads == text_cfg.num_attention_heads
    assert adapter.num_kv_heads == text_cfg.num_key_value_heads
    tm = adapter.text_model()
    assert adapter.final_norm() is tm.norm
    assert adapter.lm_head().out_features == text_cfg.vocab_size
    assert adapter.image_token_id == adapter.processor.image_token_id
    assert adapter.device == torch.device("cpu") == adapter.input_device()


def test_groups_match_processor_tokens(adapter) -> None:
    _, _, system_end, instr_start, prompt_end = FAMILIES[_family_key(adapter)]
    batch = adapter.build_batch(_images(), PROMPTS)
    ids = batch.input_ids
    for row, g in enumerate(batch.groups):
        toks = adapter.tokenizer.convert_ids_to_tokens(ids[row].tolist())
        assert g.length == ids.shape[1]
        # partition pad | system | image | instruction | output, contiguous for these families
        covered = [*g.pad, *g.system, *g.image, *g.instruction, *g.output]
        assert covered == list(range(g.length))
        assert g.pad.start == 0 and g.system.start == g.pad.stop
        assert g.image[0] == g.system.stop and g.instruction[0] == g.image[-1] + 1
        assert g.output.start == g.instruction[-1] + 1 and len(g.output) == 0
        assert batch.attention_mask[row, g.pad.start : g.pad.stop].sum() == 0
        assert bool(batch.attention_mask[row, g.system.start :].all())
        is_image = ids[row] == adapter.image_token_id
        assert bool(is_image[list(g.image)].all())
        assert int(is_image.sum()) == len(g.image) == _expected_image_tokens(adapter, batch, row)
        assert toks[g.system.stop - len(system_end) : g.system.stop] == system_end
        first = g.instruction[0]
        assert toks[first : first + len(instr_start)] == instr_start
        assert toks[g.output.start - len(prompt_end) : g.output.start] == prompt_end
        assert batch.prompt_lengths[row] == g.length - len(g.pad)
        assert g.last_prompt_position == g.length - 1
    assert batch.image_sizes == [im.size for im in _images()]
    # rows differ in length, so at least one row is padded
    assert len({len(g.pad) for g in batch.groups}) > 1


def test_groups_agree_with_processor_chat_template(adapter) -> None:
    """The processor's own tokenising chat-template path gives the same prompt ids."""
    im = _images()[0]
    messages = [
        {
            "role": "user",
            "content": [{"type": "image", "image": im}, {"type": "text", "text": PROMPTS[0]}],
        }
    ]
    ref = adapter.processor.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )
    batch = adapter.build_batch([im], [PROMPTS[0]])
    assert batch.input_ids[0].tolist() == ref["input_ids"][0].tolist()


def test_system_prompt_from_profile_lands_in_system_group(adapter) -> None:
    profile = adapter.profile.model_copy(update={"system_prompt": "You are a polite assistant"})
    plain = adapter.build_batch(_images()[:1], PROMPTS[:1]).groups[0]
    adapter.profile = profile
    try:
        batch = adapter.build_batch(_images()[:1], PROMPTS[:1])
    finally:
        adapter.profile = profile.model_copy(update={"system_prompt": None})
    g = batch.groups[0]
    toks = adapter.tokenizer.convert_ids_to_tokens(
        batch.input_ids[0, g.system.start : g.system.stop]
    )
    assert "polite" in toks
    assert len(g.image) == len(plain.image) and len(g.instruction) == len(plain.instruction)
    assert len(g.system) > len(plain.system) or adapter.family.startswith("qwen")


def test_greedy_generation_produces_tokens(adapter) -> None:
    batch = adapter.build_batch(_images()[:2], PROMPTS[:2])
    ids = adapter.generate_ids(batch, max_new_tokens=3)
    texts = adapter.generate(batch, max_new_tokens=3)
    assert len(ids) == len(texts) == 2
    assert texts == [adapter.decode(a) for a in ids]
    with torch.no_grad():
        logits = adapter.model(**batch.inputs, position_ids=adapter.position_ids(batch)).logits
    adapter.reset_state()
    first = adapter.policy.choose(logits[:, -1], [[]] * 2, 0).tolist()
    stop = set(adapter.stop_token_ids())
    forbidden = set(adapter.policy.always_forbidden)
    assert adapter.image_token_id in forbidden
    for answer, token in zip(ids, first, strict=True):
        assert len(answer) <= 3 and not stop & set(answer) and not forbidden & set(answer)
        # greedy under the policy: the first answer token is the best allowed one after the
        # prompt (or the answer ended)
        assert answer[:1] == ([] if token in stop else [token])


def test_left_padded_batch_equals_one_at_a_time(adapter) -> None:
    images = _images()
    batch = adapter.build_batch(images, PROMPTS)
    with torch.no_grad():
        batched_logits = adapter.model(**batch.inputs).logits[:, -1]
    batched = adapter.generate_ids(batch, max_new_tokens=4)
    for row in range(len(PROMPTS)):
        single = adapter.build_batch([images[row]], [PROMPTS[row]])
        assert single.groups[0].counts() == batch.groups[row].counts()
        with torch.no_grad():
            logits = adapter.model(**single.inputs).logits[0, -1]
        torch.testing.assert_close(batched_logits[row], logits, atol=1e-4, rtol=0)
        assert adapter.generate_ids(single, max_new_tokens=4) == [batched[row]]


def test_teacher_forced_answers_fill_output_group(adapter) -> None:
    images = _images()[:2]
    prompts = PROMPTS[:2]
    answers = adapter.generate_ids(adapter.build_batch(images, prompts), max_new_tokens=3)
    answers[1] = answers[1][:1]  # different answer lengths in one batch
    batch = adapter.build_batch(images, prompts, answers=answers)
    assert batch.answer_ids == answers
    with torch.no_grad():
        logits = adapter.model(**batch.inputs, position_ids=adapter.position_ids(batch)).logits
    adapter.reset_state()
    for row, g in enumerate(batch.groups):
        assert len(g.output) == len(answers[row]) and g.output.stop == g.length
        assert batch.input_ids[row, g.output.start :].tolist() == answers[row]
        # each answer token is the greedy prediction (under the policy) of the position before it
        steps = logits[row, g.output.start - 1 : g.output.stop - 1]
        pred = [int(adapter.policy.choose(steps[i : i + 1], [[]], i)[0]) for i in range(len(steps))]
        assert pred == answers[row]
    if "mm_token_type_ids" in batch.inputs:
        mm = batch.inputs["mm_token_type_ids"]
        for row, g in enumerate(batch.groups):
            assert mm[row].nonzero().flatten().tolist() == list(g.image)
    text_answers = adapter.build_batch(images, prompts, answers=["red", "a blue square"])
    assert [len(g.output) for g in text_answers.groups] == [1, 3]


def test_image_grids_cover_image_group(adapter) -> None:
    batch = adapter.build_batch(_images(), PROMPTS)
    for row, g in enumerate(batch.groups):
        grids = adapter.image_grids(batch, row)
        assert grids and grids[0].label == "base"
        for grid in grids:
            assert len(grid.positions) == grid.rows * grid.cols
            assert set(grid.positions) <= set(g.image)
            assert grid.positions == sorted(grid.positions)
        covered = [p for grid in grids for p in grid.positions]
        assert len(covered) == len(set(covered))
        if adapter.family == "llava-next":
            newlines = adapter.newline_positions(batch, row)
            assert sorted(covered + newlines) == list(g.image)
            assert grids[0].positions == list(g.image)[: grids[0].rows * grids[0].cols]
        else:
            assert covered == list(g.image)
        w, h = batch.image_sizes[row]
        if adapter.family in ("llava", "generic") and row == 0:  # 40x30: centre 30x30 crop
            assert grids[0].box == pytest.approx((5, 0, 35, 30))
        if adapter.family == "llava-next":
            assert all(grid.box == (0, 0, w, h) for grid in grids)
        if adapter.family.startswith("qwen"):
            t, gh, gw = batch.inputs["image_grid_thw"][row].tolist()
            assert (grids[0].rows, grids[0].cols) == (gh // 2, gw // 2)
            assert grids[0].box == (0, 0, w, h)
            # the resize keeps the aspect ratio to within one merged patch
            assert abs(grids[0].cols / grids[0].rows - w / h) < 0.5


def test_layers_see_group_positions(adapter) -> None:
    """Embeddings entering layer 0 at image positions are the projected image features.

    Text positions carry the token embedding of their id, image positions do not, which pins
    the image group to where the model actually put the vision features.
    """
    batch = adapter.build_batch(_images()[:1], PROMPTS[:1])
    seen = {}

    def hook(module, args, kwargs):
        seen["h"] = (args[0] if args else kwargs["hidden_states"]).detach()

    handle = adapter.decoder_layers()[0].register_forward_pre_hook(hook, with_kwargs=True)
    try:
        with torch.no_grad():
            adapter.model(**batch.inputs)
    finally:
        handle.remove()
    g = batch.groups[0]
    emb = adapter.embed_tokens()(batch.input_ids)[0]
    h = seen["h"][0]
    text = [p for name in ("system", "instruction") for p in getattr(g, name)]
    torch.testing.assert_close(h[text], emb[text])
    diff = (h[list(g.image)] - emb[list(g.image)]).abs().amax(-1)
    assert bool((diff > 1e-3).all())
    if adapter.family == "llava-next":
        newline = adapter.model.model.image_newline
        nl = adapter.newline_positions(batch, 0)
        torch.testing.assert_close(h[nl], newline.expand(len(nl), -1))
        others = [p for p in g.image if p not in set(nl)]
        assert bool(((h[others] - newline).abs().amax(-1) > 1e-3).all())


def test_counts_names_every_group(adapter) -> None:
    batch = adapter.build_batch(_images()[:1], PROMPTS[:1], answers=["red"])
    g = batch.groups[0]
    assert tuple(g.counts()) == GROUP_NAMES
    assert sum(g.counts().values()) + len(g.pad) == g.length
    assert g.group_of(g.image[0]) == "image" and g.group_of(g.length - 1) == "output"


def test_position_ids_are_the_ones_generate_uses(adapter) -> None:
    """A forward with `position_ids(batch)` gives every layer the rotary inputs generate's
    prefill gives it (padding-aware, M-RoPE), so the engines' first tokens are generate's."""
    batch = adapter.build_batch(_images(), PROMPTS)
    seen: list[tuple] = []

    def hook(module, args, kwargs):
        seen.append(tuple(t.clone() for t in kwargs["position_embeddings"]))

    handle = adapter.decoder_layers()[-1].register_forward_pre_hook(hook, with_kwargs=True)
    try:
        with torch.no_grad():
            adapter.model(**batch.inputs, position_ids=adapter.position_ids(batch))
            adapter.reset_state()
            adapter.generate_ids(batch, 1)
    finally:
        handle.remove()
    for ours, generates in zip(seen[0], seen[1], strict=True):
        torch.testing.assert_close(ours, generates, atol=0, rtol=0)
    if adapter.family.startswith("qwen"):
        pos = adapter.position_ids(batch)
        g = batch.groups[0]
        # text after the image continues from max(image position) + 1 on all three axes
        after = pos[1:, 0, g.instruction[0]]
        assert (
            int(after[0])
            == int(after[1])
            == int(after[2])
            == int(pos[1:, 0, list(g.image)].max()) + 1
        )

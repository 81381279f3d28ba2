"""The deep demo: its training forward is the sweep's truncation, its build is seeded, and the
shipped weights answer from the image and match their manifest."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pytest

from cliffscope.demo import DEEP_DIR, demo_available, load_manifest
from cliffscope.demo.recipe import STAGE_FIELDS, DeepSettings

TINY = DeepSettings(num_layers=3, hidden=32, heads=2, vision_hidden=16, vision_layers=1)
#: A build that runs every stage in seconds (weights are not meant to be any good).
SHORT = dataclasses.replace(
    TINY,
    vision_steps=2,
    vision_batch=8,
    text_steps=2,
    align_steps=2,
    steps=3,
    batch_size=6,
    trunc_share=0.5,
    trunc_min=1,
    eval_vqa=4,
    eval_captions=2,
)


@pytest.fixture(scope="module")
def setup():
    from cliffscope.demo.build import prepare

    return prepare()


@pytest.fixture(scope="module")
def tiny(setup):
    from cliffscope.demo.build import make_config, new_model

    config = make_config(len(setup.processor.tokenizer), TINY, setup.special, TINY.heads)
    return new_model(setup, config, seed=1).eval()


@pytest.fixture(scope="module")
def batch(setup):
    from cliffscope.demo.build_deep import HARD_SCENES
    from cliffscope.demo.data import SceneStream, collate
    from cliffscope.demo.deep_data import MixedStream

    stream = MixedStream(
        [setup.task_config, HARD_SCENES], [0.5, 0.5], setup.cache, "{question}", "Describe."
    )
    examples, images = stream.batch(seed=0, step=0, batch=6, caption_share=0.5)
    normalize = SceneStream(setup.task_config, setup.processor, setup.cache).pixel_values
    out = collate(examples, normalize(images), setup.special["pad"])
    assert len({len(e.prompt) + len(e.target) for e in examples}) > 1, "want padded rows"
    return out


def _dropped_loss(model, batch, trunc_from) -> float:
    """Reference: per row, run the decoder and delete the image rows before layer k."""
    import torch

    lm, ids = model.model.language_model, batch["input_ids"]
    image = ids == model.config.image_token_id
    feats = model.model.get_image_features(
        pixel_values=batch["pixel_values"], vision_feature_layer=-2,
        vision_feature_select_strategy="default",
    ).pooler_output  # fmt: skip
    embeds = lm.embed_tokens(ids).masked_scatter(
        image[..., None], torch.stack(list(feats)).reshape(-1, feats[0].shape[-1])
    )
    total, count = 0.0, 0
    for row in range(ids.shape[0]):
        hidden, pos = embeds[row : row + 1], torch.arange(ids.shape[1])[None]
        labels = batch["labels"][row]
        for idx, layer in enumerate(lm.layers):
            if idx == int(trunc_from[row]):
                hidden, pos, labels = (
                    hidden[:, ~image[row]],
                    pos[:, ~image[row]],
                    labels[~image[row]],
                )
            n = hidden.shape[1]
            mask = torch.zeros(1, 1, n, n).masked_fill(~torch.ones(n, n).bool().tril(), -1e30)
            rotary = lm.rotary_emb(hidden, position_ids=pos)
            hidden = layer(
                hidden, attention_mask=mask, position_embeddings=rotary, position_ids=pos
            )
        logits = model.lm_head(lm.norm(hidden))[0, :-1]
        target = labels[1:]
        keep = target != -100
        total += float(
            torch.nn.functional.cross_entropy(logits[keep], target[keep], reduction="sum")
        )
        count += int(keep.sum())
    return total / count


def test_decoder_loss_without_truncation_equals_the_models_own_loss(tiny, batch, setup):
    import torch

    from cliffscope.demo.forward import decoder_loss

    with torch.no_grad():
        full = float(tiny(**batch).loss)
        mine = decoder_loss(
            tiny, batch["input_ids"], batch["labels"], setup.cache.prefix_len, batch["pixel_values"]
        )
    assert float(mine) == pytest.approx(full, rel=1e-5)


def test_truncated_rows_equal_dropping_their_image_tokens_from_layer_k(tiny, batch, setup):
    import torch

    from cliffscope.demo.forward import decoder_loss

    trunc_from = torch.tensor([0, 1, 2, 3, 1, 0])  # 3 = num_layers: that row keeps its image
    with torch.no_grad():
        mine = decoder_loss(
            tiny, batch["input_ids"], batch["labels"], setup.cache.prefix_len,
            batch["pixel_values"], trunc_from,
        )  # fmt: skip
        reference = _dropped_loss(tiny, batch, trunc_from)
        untouched = _dropped_loss(tiny, batch, torch.full((6,), 3))
    assert float(mine) == pytest.approx(reference, rel=1e-5)
    assert abs(reference - untouched) > 1e-4, "truncation should change the loss"


def test_text_corpus_rows_share_the_image_prompts_prefix(setup):
    from cliffscope.demo.build_deep import HARD_SCENES
    from cliffscope.demo.deep_data import TextCorpus

    corpus = TextCorpus(setup.cache, [setup.task_config, HARD_SCENES])
    rows = corpus.batch(seed=0, step=0, batch=16)
    tok = setup.processor.tokenizer
    for row in rows:
        assert row[: setup.cache.prefix_len] == setup.cache.prefix
        assert row[-1] == tok.eos_token_id and tok.unk_token_id not in row
        assert setup.processor.image_token_id not in row
    texts = [tok.decode(r[setup.cache.prefix_len :]) for r in rows]
    assert any("?" in t for t in texts) and len(set(texts)) == len(texts)
    assert corpus.batch(seed=0, step=0, batch=16) == rows
    assert corpus.batch(seed=1, step=0, batch=16) != rows


def test_truncation_layers_cut_a_share_of_rows_from_trunc_min_on():
    from cliffscope.demo.recipe import truncation_layers

    settings = dataclasses.replace(DeepSettings(), trunc_share=0.5, trunc_min=4, num_layers=8)
    cuts = truncation_layers(settings, step=3, rows=4000)
    k = cuts.trunc_from.numpy()
    assert k.min() >= 4 and k.max() == 8 and cuts.swap_from is None
    assert 0.35 < (k < 8).mean() < 0.45  # half the rows, and 1 in 5 of those draws k = 8
    none = dataclasses.replace(settings, trunc_share=0.0)
    assert (truncation_layers(none, step=3, rows=100).trunc_from.numpy() == 8).all()
    mixed = truncation_layers(dataclasses.replace(settings, swap_share=0.5), step=3, rows=4000)
    drop, swap = mixed.trunc_from.numpy(), mixed.swap_from.numpy()
    assert not ((drop < 8) & (swap < 8)).any(), "a row is dropped or swapped, not both"
    assert 0.15 < (swap < 8).mean() < 0.25 and swap.min() >= 4
    assert (mixed.partner.numpy() != np.arange(4000)).all()


def test_swapping_at_layer_0_is_answering_about_the_partners_image(tiny, batch, setup):
    import torch

    from cliffscope.demo.forward import decoder_loss

    ids, labels, pixels, prefix = (
        batch["input_ids"], batch["labels"], batch["pixel_values"], setup.cache.prefix_len
    )  # fmt: skip
    partner = torch.tensor([1, 2, 3, 4, 5, 0])
    with torch.no_grad():
        swapped = decoder_loss(
            tiny, ids, labels, prefix, pixels, None, torch.zeros(6, dtype=torch.long), partner
        )
        other_images = decoder_loss(tiny, ids, labels, prefix, pixels[partner])
        never = decoder_loss(tiny, ids, labels, prefix, pixels, None, torch.full((6,), 3), partner)
        own = decoder_loss(tiny, ids, labels, prefix, pixels)
        later = decoder_loss(tiny, ids, labels, prefix, pixels, None, torch.full((6,), 2), partner)
    assert float(swapped) == pytest.approx(float(other_images), rel=1e-5)
    assert float(never) == pytest.approx(float(own), rel=1e-6)
    assert abs(float(later) - float(own)) > 1e-5 and abs(float(later) - float(swapped)) > 1e-5


def test_prefetched_batches_are_the_batches_made_in_turn(setup):
    """The build makes each step's batch on a second thread; the weights then depend on the
    batches being exactly those drawn from ``(seed, step)``, in step order."""
    import threading

    from cliffscope.demo.build_deep import HARD_SCENES
    from cliffscope.demo.deep_data import MixedStream, TextCorpus
    from cliffscope.demo.recipe import prefetched

    stream = MixedStream(
        [setup.task_config, HARD_SCENES], [0.5, 0.5], setup.cache, "{question}", "Describe."
    )
    corpus = TextCorpus(setup.cache, [setup.task_config, HARD_SCENES])
    threads: set[str] = set()

    def batch_at(step: int):
        threads.add(threading.current_thread().name)
        examples, images = stream.batch(0, step, 4, 0.5)
        return [e.prompt + e.target for e in examples], images, corpus.batch(0, step, 4)

    ahead = list(prefetched(batch_at, 6))
    assert [step for step, _ in ahead] == list(range(6))
    assert threads and threading.current_thread().name not in threads
    for step, (rows, images, text) in ahead:
        again_rows, again_images, again_text = batch_at(step)
        assert rows == again_rows and text == again_text
        assert np.array_equal(images, again_images)
    assert list(prefetched(batch_at, 0)) == []

    def broken(step: int):
        if step == 2:
            raise ValueError("scene 2 is broken")
        return step

    with pytest.raises(ValueError, match="scene 2"):
        list(prefetched(broken, 5))


def test_every_setting_that_changes_the_weights_is_part_of_a_stage_key():
    keyed = {name for names in STAGE_FIELDS.values() for name in names}
    fields = {f.name for f in dataclasses.fields(DeepSettings)}
    assert fields - keyed == {"eval_vqa", "eval_captions"}


@pytest.mark.slow
def test_deep_build_is_a_pure_function_of_its_seed(tmp_path):
    from cliffscope.demo.build_deep import build_deep

    def build(name: str, seed: int, cache=None) -> str:
        return build_deep(
            tmp_path / name, seed=seed, settings=SHORT, stage_cache=cache
        ).weights_sha256

    first = build("a", 5)
    assert build("b", 5) == first
    assert build("c", 6) != first
    # The stage cache gives the same bytes, and a changed instruction knob reuses earlier stages.
    cache = tmp_path / "cache"
    assert build("d", 5, cache) == first
    assert build("e", 5, cache) == first
    stored = {p.name.split("-")[0] for p in cache.iterdir()}
    assert stored == {"vision", "text", "align", "instruct"}
    changed = dataclasses.replace(SHORT, trunc_min=2)
    build_deep(tmp_path / "f", seed=5, settings=changed, stage_cache=cache)
    assert len(list(cache.glob("text-*"))) == 1 and len(list(cache.glob("instruct-*"))) == 2


@pytest.mark.slow
def test_deep_build_writes_a_loadable_model_and_manifest(tmp_path):
    import torch
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    from cliffscope.demo.build_deep import build_deep

    seen: set[str] = set()
    m = build_deep(tmp_path, seed=2, settings=SHORT, progress=lambda s, *_: seen.add(s))
    assert seen == {"vision", "text", "align", "instruct", "eval"}
    assert demo_available(tmp_path)
    on_disk = load_manifest(tmp_path)
    assert on_disk["weights_sha256"] == m.weights_sha256
    assert on_disk["settings"]["trunc_min"] == 1 and on_disk["model"]["text_layers"] == 3
    assert set(on_disk["heldout"]["stage_losses"]) == {"text", "align", "instruct"}
    # the weights' bits depend on the CPU kernels, so the manifest names them
    assert on_disk["versions"]["cpu"].startswith(torch.backends.cpu.get_cpu_capability())
    model = LlavaForConditionalGeneration.from_pretrained(tmp_path)
    assert model.config.text_config.num_hidden_layers == 3
    assert AutoProcessor.from_pretrained(tmp_path).chat_template is not None


def test_builtin_demo_deep_resolves_to_the_shipped_directory(monkeypatch, tmp_path):
    import cliffscope.demo
    from cliffscope.errors import CliffscopeError
    from cliffscope.models.loading import resolve_model_source
    from cliffscope.profiles import Profile

    profile = Profile(name="deep", family="llava", model="builtin:demo-deep")
    monkeypatch.setattr(cliffscope.demo, "DEEP_DIR", tmp_path)
    with pytest.raises(CliffscopeError) as err:
        resolve_model_source(profile)
    assert "demo build --deep" in (err.value.hint or "")
    (tmp_path / "config.json").write_text("{}")
    assert resolve_model_source(profile) == str(tmp_path)


shipped = pytest.mark.skipif(not demo_available(DEEP_DIR), reason="deep demo weights not built")


@shipped
def test_shipped_deep_weights_match_their_manifest():
    manifest = load_manifest(DEEP_DIR)
    digest = hashlib.sha256((DEEP_DIR / "model.safetensors").read_bytes()).hexdigest()
    assert digest == manifest["weights_sha256"]
    assert sum(p.stat().st_size for p in DEEP_DIR.iterdir()) <= 20 * 2**20
    assert set(manifest["files"]) <= {p.name for p in DEEP_DIR.iterdir()}
    assert manifest["model"]["text_layers"] >= 8
    h = manifest["heldout"]
    assert h["accuracy"] >= 0.95 and h["accuracy_no_image"] <= h["chance"] + 0.15


@shipped
def test_shipped_deep_weights_were_built_with_the_recipe_defaults():
    """`cliffscope demo build --deep` (the defaults) must rebuild what ships, not a variant."""
    built = load_manifest(DEEP_DIR)["settings"]
    defaults = dataclasses.asdict(DeepSettings())
    keyed = sorted({name for names in STAGE_FIELDS.values() for name in names})
    assert {k: built.get(k) for k in keyed} == {k: defaults[k] for k in keyed}
    assert load_manifest(DEEP_DIR)["seed"] == 0


@shipped
@pytest.mark.slow
def test_shipped_deep_weights_reach_the_manifest_accuracy():
    import torch
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    from cliffscope.demo.evaluate import evaluate_task
    from cliffscope.tasks.registry import get_task

    torch.set_num_threads(2)
    h = load_manifest(DEEP_DIR)["heldout"]
    model = LlavaForConditionalGeneration.from_pretrained(DEEP_DIR).eval()
    processor = AutoProcessor.from_pretrained(DEEP_DIR)
    task = get_task(h["task"])
    with_image = evaluate_task(model, processor, task, range(100), with_image=True)
    assert with_image.score == pytest.approx(h["accuracy_first_100"], abs=0.02)
    assert with_image.score >= 0.95
    without = evaluate_task(model, processor, task, range(100), with_image=False)
    assert without.score == pytest.approx(h["accuracy_no_image_first_100"], abs=0.02)
    assert without.score <= h["chance"] + 0.15

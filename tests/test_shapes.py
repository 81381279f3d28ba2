"""Procedural shapes scenes: deterministic, unambiguous, and drawn where the scene says."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest

from cliffscope.errors import ValidationError
from cliffscope.tasks.shapes import (
    DISTRACTOR_KINDS,
    PALETTE,
    SHAPES,
    ShapesConfig,
    caption_sample,
    captions,
    make_scene,
    render,
    vocabulary,
    vqa_sample,
)

ALL = ShapesConfig(
    n_shapes=3,
    shapes=SHAPES,
    colors=tuple(PALETTE),
    question_types=("color", "shape", "side"),
    distractors=3,
)


def _pixels(img) -> np.ndarray:
    return np.asarray(img).astype(int)


def test_sample_is_a_function_of_seed_and_index_only():
    cfg = ShapesConfig()
    later = [vqa_sample(cfg, i) for i in range(6)][5]
    alone = vqa_sample(cfg, 5)
    assert alone["id"] == "shapes-000005"
    assert alone["question"] == later["question"] and alone["answers"] == later["answers"]
    assert np.array_equal(_pixels(alone["image"]), _pixels(later["image"]))
    assert np.array_equal(_pixels(caption_sample(cfg, 5)["image"]), _pixels(alone["image"])), (
        "the caption and VQA views of one index must show the same scene"
    )


def test_indices_and_seeds_give_different_scenes():
    a = [make_scene(ShapesConfig(seed=0), i) for i in range(20)]
    b = [make_scene(ShapesConfig(seed=1), i) for i in range(20)]
    assert len({s.objects for s in a}) == 20
    assert sum(x.objects != y.objects for x, y in zip(a, b, strict=True)) >= 19


@pytest.mark.parametrize("n", [1, 2, 3])
def test_scene_objects_are_distinct_and_ordered_left_to_right(n):
    cfg = ShapesConfig(n_shapes=n, shapes=SHAPES, colors=tuple(PALETTE), distractors=2)
    for i in range(30):
        scene = make_scene(cfg, i)
        objs = scene.objects
        assert len(objs) == n
        assert len({o.shape for o in objs}) == n and len({o.color for o in objs}) == n
        for left, right in zip(objs, objs[1:], strict=False):
            assert left.bbox[2] <= right.bbox[0], "objects overlap horizontally"
        for o in (*objs, *scene.distractors):
            x0, y0, x1, y1 = o.bbox
            assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1


def test_render_draws_each_object_in_its_colour_at_its_box():
    for size in (64, 336):
        cfg = ShapesConfig(n_shapes=3, shapes=SHAPES[:5], image_size=size)
        for i in range(10):
            scene = make_scene(cfg, i)
            img = render(scene, size)
            assert img.mode == "RGB" and img.size == (size, size)
            px = _pixels(img)
            for o in scene.objects:
                x0, y0, x1, y1 = o.bbox_px(size)
                centre = px[(y0 + y1) // 2, (x0 + x1) // 2]
                assert np.abs(centre - np.array(PALETTE[o.color])).max() <= 2, (o, centre)
            assert (px[0, 0] == 255).all() or any(
                o.bbox[0] < 0.05 and o.bbox[1] < 0.05 for o in scene.objects
            )


def test_colour_questions_name_a_present_shape_and_answer_its_colour():
    cfg = ShapesConfig(n_shapes=3, shapes=SHAPES, colors=tuple(PALETTE))
    for i in range(50):
        s = vqa_sample(cfg, i)
        shape = re.fullmatch(r"What color is the (\w+)\?", s["question"]).group(1)
        objs = {o["shape"]: o["color"] for o in s["meta"]["objects"]}
        assert s["answers"] == [objs[shape]]


def test_shape_and_side_questions_are_answered_from_the_scene():
    seen = Counter()
    for i in range(120):
        s = vqa_sample(ALL, i)
        objs = s["meta"]["objects"]
        qtype = s["meta"]["question_type"]
        seen[qtype] += 1
        if qtype == "shape":
            color = re.fullmatch(r"What shape is the (\w+) object\?", s["question"]).group(1)
            assert s["answers"] == [next(o["shape"] for o in objs if o["color"] == color)]
        elif qtype == "side":
            a, b = re.fullmatch(
                r"Is the (\w+) left or right of the (\w+)\?", s["question"]
            ).groups()
            ax = next(o["bbox"][0] for o in objs if o["shape"] == a)
            bx = next(o["bbox"][0] for o in objs if o["shape"] == b)
            assert a != b and s["answers"] == ["left" if ax < bx else "right"]
    assert set(seen) == {"color", "shape", "side"}


def test_colour_answers_are_balanced_so_chance_is_one_over_colours():
    cfg = ShapesConfig()
    counts = Counter(vqa_sample(cfg, i)["answers"][0] for i in range(400))
    assert set(counts) == set(cfg.colors)
    assert all(0.17 < c / 400 < 0.33 for c in counts.values()), counts


def test_captions_describe_every_object_with_correct_relations():
    for n in (1, 2, 3):
        cfg = ShapesConfig(n_shapes=n, shapes=SHAPES, colors=tuple(PALETTE))
        for i in range(20):
            scene = make_scene(cfg, i)
            refs = caption_sample(cfg, i)["caption_refs"]
            assert refs == captions(scene) and len(refs) >= 3 and len(set(refs)) == len(refs)
            for ref in refs:
                for o in scene.objects:
                    assert f"{o.color} {o.shape}" in ref
            if n == 2:
                left, right = scene.objects
                assert refs[0] == f"{left.phrase()} left of {right.phrase()}"
                assert f"{right.phrase()} right of {left.phrase()}" in refs


def test_article_before_vowel_colour():
    cfg = ShapesConfig(n_shapes=1, colors=("orange",))
    assert caption_sample(cfg, 0)["caption_refs"][0].startswith("an orange ")


def test_distractors_are_small_apart_and_never_described():
    cfg = ShapesConfig(distractors=4)
    total = 0
    for i in range(20):
        scene = make_scene(cfg, i)
        total += len(scene.distractors)
        assert len(scene.distractors) <= 4
        for d in scene.distractors:
            assert d.shape in DISTRACTOR_KINDS
            for o in scene.objects:
                assert (
                    d.bbox[2] <= o.bbox[0]
                    or o.bbox[2] <= d.bbox[0]
                    or (d.bbox[3] <= o.bbox[1] or o.bbox[3] <= d.bbox[1])
                )
        assert not any(k in " ".join(captions(scene)) for k in DISTRACTOR_KINDS)
    assert total >= 40, "distractors are almost never placed"


def test_vocabulary_covers_every_generated_text():
    vocab = set(vocabulary())
    for i in range(150):
        texts = [vqa_sample(ALL, i)["question"], *vqa_sample(ALL, i)["answers"]]
        texts += caption_sample(ALL, i)["caption_refs"]
        texts.append(caption_sample(ALL, i)["meta"]["prompt"])
        for t in texts:
            assert set(re.findall(r"\w+|[^\w\s]+", t)) <= vocab, t


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"n_shapes": 4}, "n_shapes"),
        ({"n_shapes": 0}, "n_shapes"),
        ({"colors": ("red", "mauve")}, "colors"),
        ({"shapes": ("circle", "blob")}, "shapes"),
        ({"n_shapes": 1, "question_types": ("side",)}, "question_types"),
        ({"question_types": ("count",)}, "question_types"),
        ({"image_size": 8}, "image_size"),
        ({"distractors": -1}, "distractors"),
        ({"n_shapes": 3, "grid": 2}, "grid"),
        ({"fill_range": (0.1, 0.5)}, "fill_range"),
        ({"jitter": 0.8}, "jitter"),
    ],
)
def test_invalid_configs_name_the_key(kwargs, key):
    with pytest.raises(ValidationError) as err:
        ShapesConfig(**kwargs)
    assert err.value.where.key == key
    assert err.value.hint


def test_negative_index_is_rejected():
    with pytest.raises(ValidationError):
        vqa_sample(ShapesConfig(), -1)


def test_grid_layout_puts_shapes_on_the_patch_grid_and_free_layout_does_not():
    def centres_on_grid(cfg: ShapesConfig) -> float:
        hits = []
        for i in range(40):
            for o in make_scene(cfg, i).objects:
                cx = (o.bbox[0] + o.bbox[2]) / 2 * cfg.grid * 2
                hits.append(abs(cx - round(cx)) < 1e-9)
        return float(np.mean(hits))

    assert centres_on_grid(ShapesConfig(grid=4)) == 1.0
    assert centres_on_grid(ShapesConfig(grid=4, jitter=0.3)) < 0.2
    free = [make_scene(ShapesConfig(grid=0), i).objects[0].bbox[0] * 4 for i in range(40)]
    assert np.mean([abs(v - round(v)) < 1e-9 for v in free]) < 0.2


def test_grid_blocks_stay_inside_their_strip_and_vary_in_size():
    cfg = ShapesConfig(n_shapes=2, grid=4, jitter=0.4)
    sides = set()
    for i in range(60):
        left, right = make_scene(cfg, i).objects
        assert left.bbox[2] <= 0.5 + 1e-9 <= right.bbox[0] + 2e-9
        sides.update(round((o.bbox[2] - o.bbox[0]) * 4) for o in (left, right))
    assert sides == {1, 2}, "blocks of one and two cells expected"

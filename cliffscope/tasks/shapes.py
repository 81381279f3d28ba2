"""Procedural shapes scenes: a VQA and a captioning task that ship with the package.

Real benchmarks need a dataset download; these scenes need nothing, so the embedded demo
model can be trained and checked offline. Every sample is a pure function of
``(config.seed, index)``: sample 17 is the same image whether 20 or 20,000 are drawn, which
makes run subsets and resumed sweeps reproducible. Only PIL and numpy are used (domain core).

Scenes hold ``n_shapes`` objects of *distinct* shape types and distinct colours, each in its
own vertical strip of the image, so "What color is the circle?" has exactly one answer and
left/right relations are never ambiguous. Optional distractors are small dots and bars of
palette colours that are never asked about.

By default objects snap to a 4 x 4 grid of cells, the demo model's image-token grid at 64 px
with 16 px patches: a vision transformer trained from scratch in minutes recognises shapes
that sit on its patch grid (measured: 100% in 200 steps) but not shapes at arbitrary sub-patch
offsets (about 65% after 400 steps). ``grid=0`` places objects freely; real models handle both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

from cliffscope.errors import Location, ValidationError

#: RGB values of the colour words a scene may use.
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 38, 38),
    "green": (34, 160, 60),
    "blue": (37, 84, 222),
    "yellow": (238, 200, 20),
    "purple": (140, 60, 190),
    "orange": (245, 130, 20),
}
#: Shape words a scene may use (main objects).
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "diamond", "star", "cross")
#: Kinds of distractor objects; never the subject of a question or caption.
DISTRACTOR_KINDS: tuple[str, ...] = ("dot", "bar")
#: Question types `vqa_sample` can ask.
QUESTION_TYPES: tuple[str, ...] = ("color", "shape", "side")

QUESTION_TEMPLATES: dict[str, str] = {
    "color": "What color is the {shape}?",
    "shape": "What shape is the {color} object?",
    "side": "Is the {shape} left or right of the {other}?",
}
CAPTION_PROMPT = "Describe the image in a few words."


@dataclass(frozen=True)
class ShapesConfig:
    """Difficulty knobs of a shapes task; every field is part of the sample's identity.

    - ``n_shapes``: objects per scene, each of a different shape and colour.
    - ``distractors``: small dots/bars placed in free space, never asked about.
    - ``image_size``: rendered side in pixels (64 for the demo model, 336 for LLaVA-1.5).
    - ``shapes`` / ``colors``: the vocabularies a scene draws from (see `SHAPES`, `PALETTE`).
    - ``question_types``: which of `QUESTION_TYPES` `vqa_sample` may ask.
    - ``grid``: snap objects to blocks of a ``grid`` x ``grid`` cell layout (0: free placement);
      ``fill_range`` is then the share of its block a shape fills and ``jitter`` how far (in
      cells) its centre may move; with ``grid=0``, ``size_range`` is its side / image side.
    - ``seed``: with the sample index, the only source of randomness.
    """

    n_shapes: int = 2
    distractors: int = 0
    image_size: int = 64
    shapes: tuple[str, ...] = ("circle", "square", "triangle")
    colors: tuple[str, ...] = ("red", "green", "blue", "yellow")
    question_types: tuple[str, ...] = ("color",)
    size_range: tuple[float, float] = (0.25, 0.42)
    grid: int = 4
    fill_range: tuple[float, float] = (0.7, 0.95)
    jitter: float = 0.0
    background: tuple[int, int, int] = (255, 255, 255)
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "shapes", tuple(self.shapes))
        object.__setattr__(self, "colors", tuple(self.colors))
        object.__setattr__(self, "question_types", tuple(self.question_types))
        object.__setattr__(self, "size_range", tuple(self.size_range))
        object.__setattr__(self, "fill_range", tuple(self.fill_range))
        object.__setattr__(self, "background", tuple(self.background))
        _check(self)


def _check(cfg: ShapesConfig) -> None:
    """Reject configs that cannot produce unambiguous scenes, naming the offending key."""

    def bad(key: str, what: str, hint: str) -> ValidationError:
        return ValidationError(what, where=Location(key=key), hint=hint)

    if unknown := [s for s in cfg.shapes if s not in SHAPES]:
        raise bad("shapes", f"unknown shape(s) {unknown}", f"choose from {list(SHAPES)}")
    if unknown := [c for c in cfg.colors if c not in PALETTE]:
        raise bad("colors", f"unknown colour(s) {unknown}", f"choose from {list(PALETTE)}")
    if unknown := [q for q in cfg.question_types if q not in QUESTION_TYPES]:
        raise bad("question_types", f"unknown question type(s) {unknown}", f"use {QUESTION_TYPES}")
    if not cfg.question_types:
        raise bad("question_types", "no question types", f"use some of {QUESTION_TYPES}")
    if len(set(cfg.shapes)) != len(cfg.shapes) or len(set(cfg.colors)) != len(cfg.colors):
        raise bad("shapes", "shapes and colors must not repeat", "remove the duplicates")
    limit = min(len(cfg.shapes), len(cfg.colors))
    if not 1 <= cfg.n_shapes <= limit:
        raise bad(
            "n_shapes",
            f"n_shapes={cfg.n_shapes} but a scene needs distinct shapes and colours",
            f"use 1..{limit}, or list more shapes/colors",
        )
    if "side" in cfg.question_types and cfg.n_shapes < 2:
        raise bad("question_types", "'side' questions need n_shapes >= 2", "raise n_shapes")
    if cfg.distractors < 0:
        raise bad("distractors", "distractors must be >= 0", "use 0 for none")
    if cfg.image_size < 16:
        raise bad("image_size", f"image_size={cfg.image_size} is too small", "use >= 16")
    lo, hi = cfg.size_range
    if not 0.05 <= lo <= hi <= 1.0:
        raise bad(
            "size_range", f"size_range={cfg.size_range} is invalid", "use 0.05 <= lo <= hi <= 1"
        )
    if cfg.grid and cfg.grid < cfg.n_shapes:
        raise bad(
            "grid", f"grid={cfg.grid} has fewer columns than n_shapes", "use 0 or >= n_shapes"
        )
    if cfg.grid < 0:
        raise bad("grid", "grid must be >= 0", "use 0 for free placement")
    lo, hi = cfg.fill_range
    if not 0.2 <= lo <= hi <= 1.0:
        raise bad(
            "fill_range", f"fill_range={cfg.fill_range} is invalid", "use 0.2 <= lo <= hi <= 1"
        )
    if not 0.0 <= cfg.jitter <= 0.5:
        raise bad("jitter", f"jitter={cfg.jitter} is invalid", "use 0 .. 0.5 (cells)")
    if cfg.seed < 0:
        raise bad("seed", "seed must be >= 0", "use a non-negative integer")


@dataclass(frozen=True)
class SceneObject:
    """One drawn object; ``bbox`` is (x0, y0, x1, y1) as fractions of the image side."""

    shape: str
    color: str
    bbox: tuple[float, float, float, float]

    @property
    def center_x(self) -> float:
        return (self.bbox[0] + self.bbox[2]) / 2

    def bbox_px(self, size: int) -> tuple[int, int, int, int]:
        """Pixel box in a ``size`` x ``size`` rendering."""
        return tuple(round(v * size) for v in self.bbox)  # type: ignore[return-value]

    def phrase(self) -> str:
        return f"{_article(self.color)} {self.color} {self.shape}"


@dataclass(frozen=True)
class Scene:
    """Objects ordered left to right, plus distractors drawn underneath them."""

    objects: tuple[SceneObject, ...]
    distractors: tuple[SceneObject, ...] = ()
    background: tuple[int, int, int] = (255, 255, 255)
    index: int = 0
    seed: int = 0

    def find(self, shape: str) -> SceneObject:
        return next(o for o in self.objects if o.shape == shape)


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _rng(config: ShapesConfig, index: int, stream: int) -> np.random.Generator:
    """Independent generator per (seed, index, stream): layout and question never interfere."""
    if index < 0:
        raise ValidationError(f"sample index {index} is negative", hint="indices start at 0")
    return np.random.default_rng([config.seed, index, stream])


def make_scene(config: ShapesConfig, index: int) -> Scene:
    """Lay out sample ``index``: distinct shapes/colours, one vertical strip per object."""
    rng = _rng(config, index, 0)
    n = config.n_shapes
    shapes = [config.shapes[i] for i in rng.choice(len(config.shapes), n, replace=False)]
    colors = [config.colors[i] for i in rng.choice(len(config.colors), n, replace=False)]
    place = _grid_box if config.grid else _free_box
    objects = [
        SceneObject(shape, color, place(config, rng, i))
        for i, (shape, color) in enumerate(zip(shapes, colors, strict=True))
    ]
    distractors = _place_distractors(config, rng, objects)
    return Scene(tuple(objects), distractors, config.background, index, config.seed)


def _free_box(config: ShapesConfig, rng: np.random.Generator, i: int) -> tuple[float, ...]:
    """Any position and size inside strip ``i`` of ``n_shapes`` equal vertical strips."""
    strip = 1.0 / config.n_shapes
    lo, hi = config.size_range
    side = float(rng.uniform(min(lo, 0.9 * strip), min(hi, 0.9 * strip)))
    x0 = float(rng.uniform(i * strip, (i + 1) * strip - side))
    y0 = float(rng.uniform(0.0, 1.0 - side))
    return (x0, y0, x0 + side, y0 + side)


def _grid_box(config: ShapesConfig, rng: np.random.Generator, i: int) -> tuple[float, ...]:
    """A block of k x k grid cells inside strip ``i``; the shape fills part of it, centred.

    Strip ``i`` spans cells ``round(i * g / n)`` to ``round((i + 1) * g / n)``; k is drawn from
    1 .. min(strip width, ceil(g / 2)), the fill fraction from ``fill_range``, and the centre
    moves by up to ``jitter`` cells without leaving the strip.
    """
    g, n = config.grid, config.n_shapes
    c0, c1 = round(i * g / n), round((i + 1) * g / n)
    k = int(rng.integers(1, min(c1 - c0, math.ceil(g / 2)) + 1))
    bx = int(rng.integers(c0, c1 - k + 1))
    by = int(rng.integers(0, g - k + 1))
    side = k * float(rng.uniform(*config.fill_range)) / g
    dx, dy = (float(v) * config.jitter / g for v in rng.uniform(-1.0, 1.0, size=2))
    cx = min(max((bx + k / 2) / g + dx, c0 / g + side / 2), c1 / g - side / 2)
    cy = min(max((by + k / 2) / g + dy, side / 2), 1.0 - side / 2)
    return (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)


def _place_distractors(
    config: ShapesConfig, rng: np.random.Generator, objects: list[SceneObject]
) -> tuple[SceneObject, ...]:
    """Small dots/bars in free space; a crowded scene may hold fewer than asked."""
    placed: list[SceneObject] = []
    for _ in range(config.distractors):
        for _attempt in range(30):
            kind = DISTRACTOR_KINDS[int(rng.integers(len(DISTRACTOR_KINDS)))]
            color = config.colors[int(rng.integers(len(config.colors)))]
            side = float(rng.uniform(0.06, 0.11))
            x0, y0 = (float(v) for v in rng.uniform(0.0, 1.0 - side, size=2))
            cand = SceneObject(kind, color, (x0, y0, x0 + side, y0 + side))
            if not any(_overlaps(cand.bbox, o.bbox, 0.02) for o in [*objects, *placed]):
                placed.append(cand)
                break
    return tuple(placed)


def _overlaps(a: tuple[float, ...], b: tuple[float, ...], margin: float) -> bool:
    return not (
        a[2] + margin <= b[0]
        or b[2] + margin <= a[0]
        or a[3] + margin <= b[1]
        or b[3] + margin <= a[1]
    )


def render(scene: Scene, size: int) -> Image.Image:
    """Draw ``scene`` as a ``size`` x ``size`` RGB image (supersampled for smooth edges)."""
    ss = 4 if size <= 256 else 2
    big = size * ss
    img = Image.new("RGB", (big, big), scene.background)
    draw = ImageDraw.Draw(img)
    for obj in (*scene.distractors, *scene.objects):
        _draw(draw, obj, big)
    return img.reduce(ss)  # box filter: each pixel is the mean of its ss x ss block


def _draw(draw: ImageDraw.ImageDraw, obj: SceneObject, big: int) -> None:
    x0, y0, x1, y1 = (v * big for v in obj.bbox)
    cx, cy, w, h = (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0
    fill = PALETTE[obj.color]
    if obj.shape in ("circle", "dot"):
        draw.ellipse((x0, y0, x1, y1), fill=fill)
    elif obj.shape == "square":
        draw.rectangle((x0, y0, x1, y1), fill=fill)
    elif obj.shape == "bar":
        draw.rectangle((x0, cy - h / 6, x1, cy + h / 6), fill=fill)
    elif obj.shape == "triangle":
        draw.polygon([(cx, y0), (x1, y1), (x0, y1)], fill=fill)
    elif obj.shape == "diamond":
        draw.polygon([(cx, y0), (x1, cy), (cx, y1), (x0, cy)], fill=fill)
    elif obj.shape == "cross":
        draw.rectangle((cx - w / 6, y0, cx + w / 6, y1), fill=fill)
        draw.rectangle((x0, cy - h / 6, x1, cy + h / 6), fill=fill)
    elif obj.shape == "star":
        pts = []
        for k in range(10):
            r = (w / 2) if k % 2 == 0 else (w / 5)
            a = -math.pi / 2 + k * math.pi / 5
            pts.append((cx + r * math.cos(a), cy + r * math.sin(a)))
        draw.polygon(pts, fill=fill)
    else:  # pragma: no cover - guarded by _check
        raise ValueError(obj.shape)


def _scene_meta(config: ShapesConfig, scene: Scene) -> dict:
    return {
        "seed": config.seed,
        "index": scene.index,
        "n_shapes": config.n_shapes,
        "objects": [
            {"shape": o.shape, "color": o.color, "bbox": list(o.bbox)} for o in scene.objects
        ],
        "distractors": [
            {"shape": o.shape, "color": o.color, "bbox": list(o.bbox)} for o in scene.distractors
        ],
    }


def sample_id(index: int) -> str:
    return f"shapes-{index:06d}"


@dataclass(frozen=True)
class Question:
    """A question about a scene and every accepted answer string."""

    type: str
    text: str
    answers: list[str] = field(default_factory=list)


def make_question(config: ShapesConfig, scene: Scene) -> Question:
    """Pick the question type and target for ``scene`` (its own random stream)."""
    rng = _rng(config, scene.index, 1)
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


def vqa_sample(config: ShapesConfig, index: int) -> dict:
    """Sample ``index`` as ``{id, image, question, answers, meta}``; the answer needs the image."""
    scene = make_scene(config, index)
    q = make_question(config, scene)
    meta = {**_scene_meta(config, scene), "question_type": q.type}
    return {
        "id": sample_id(index),
        "image": render(scene, config.image_size),
        "question": q.text,
        "answers": q.answers,
        "meta": meta,
    }


def captions(scene: Scene) -> list[str]:
    """Reference captions; the first is the canonical left-to-right one."""
    objs = scene.objects
    p = [o.phrase() for o in objs]
    if len(objs) == 1:
        return [p[0], f"there is {p[0]}", f"{p[0]} on a white background"]
    if len(objs) == 2:
        return [
            f"{p[0]} left of {p[1]}",
            f"{p[1]} right of {p[0]}",
            f"{p[0]} to the left of {p[1]}",
            f"{p[1]} to the right of {p[0]}",
            f"{p[0]} and {p[1]}",
        ]
    ltr = ", ".join(p[:-1]) + f" and {p[-1]}"
    rtl = ", ".join(p[::-1][:-1]) + f" and {p[0]}"
    return [
        f"{ltr} from left to right",
        f"from left to right {ltr}",
        f"{rtl} from right to left",
        " left of ".join(p),
    ]


def caption_sample(config: ShapesConfig, index: int) -> dict:
    """Sample ``index`` as ``{id, image, caption_refs, meta}`` (several paraphrases)."""
    scene = make_scene(config, index)
    return {
        "id": sample_id(index),
        "image": render(scene, config.image_size),
        "caption_refs": captions(scene),
        "meta": {**_scene_meta(config, scene), "prompt": CAPTION_PROMPT},
    }


def vocabulary() -> list[str]:
    """Every word any question, answer, caption or prompt here can contain (for tokenizers)."""
    words: set[str] = set(SHAPES) | set(PALETTE) | {"a", "an", "left", "right"}
    texts = [*QUESTION_TEMPLATES.values(), CAPTION_PROMPT]
    texts += ["there is on a white background to the of and from left to right , right to left"]
    for text in texts:
        for token in text.replace("?", " ? ").replace(".", " . ").replace(",", " , ").split():
            if not token.startswith("{"):
                words.add(token)
    return sorted(words)

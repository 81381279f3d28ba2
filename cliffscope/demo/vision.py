"""Stage 1 of the demo build: pretrain the CLIP tower, as LLaVA starts from a trained CLIP.

A vision transformer trained from scratch only through the language model's answer loss
learns shapes far too slowly for a five-minute CPU budget (measured: the model then sits at
the 50% "which colours are present" plateau). Real LLaVA never faces this: its CLIP tower was
pretrained on image-text pairs and is frozen. The stand-in here is a dense objective: every
patch token predicts the shape and the colour of the object covering it (or background), so
patch tokens carry "what is here" before the language model is trained to look them up.
The heads are thrown away afterwards; only the tower's weights go into the LLaVA model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from cliffscope.tasks.shapes import Scene, ShapesConfig, make_scene, render

if TYPE_CHECKING:
    import torch

#: Scene indices used for vision pretraining (disjoint from held-out and LLaVA training).
VISION_INDEX_OFFSET = 2_000_000


def patch_labels(scene: Scene, config: ShapesConfig, grid: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-patch class ids (row-major): 0 = background, else 1 + index in shapes / colors.

    A patch belongs to the object covering the largest part of it, if that is at least a
    quarter of the patch.
    """
    shape_ids = np.zeros(grid * grid, dtype=np.int64)
    color_ids = np.zeros(grid * grid, dtype=np.int64)
    best = np.full(grid * grid, 0.25 / grid**2)
    for obj in scene.objects:
        x0, y0, x1, y1 = obj.bbox
        for r in range(grid):
            for c in range(grid):
                w = min(x1, (c + 1) / grid) - max(x0, c / grid)
                h = min(y1, (r + 1) / grid) - max(y0, r / grid)
                k = r * grid + c
                if w > 0 and h > 0 and w * h > best[k]:
                    best[k] = w * h
                    shape_ids[k] = 1 + config.shapes.index(obj.shape)
                    color_ids[k] = 1 + config.colors.index(obj.color)
    return shape_ids, color_ids


def pretrain_vision(
    tower: Any,
    config: ShapesConfig,
    normalize: Any,
    steps: int,
    seed: int,
    batch: int = 64,
    lr: float = 2e-3,
    progress: Any = None,
) -> float:
    """Train ``tower`` (a `CLIPVisionModel`-like module) on per-patch shape and colour.

    ``normalize`` maps uint8 images (B, H, W, 3) to pixel values. Uses the hidden state that
    LLaVA reads (``vision_feature_layer=-2``). Returns patch accuracy of the last step.
    """
    import torch

    grid = config.image_size // tower.config.patch_size
    width = tower.config.hidden_size
    gen = torch.Generator().manual_seed(seed + 17)
    shape_head = torch.nn.Linear(width, 1 + len(config.shapes))
    color_head = torch.nn.Linear(width, 1 + len(config.colors))
    for head in (shape_head, color_head):
        torch.nn.init.normal_(head.weight, std=0.02, generator=gen)
        torch.nn.init.zeros_(head.bias)
    params = [*tower.parameters(), *shape_head.parameters(), *color_head.parameters()]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    tower.train()
    acc = 0.0
    for step in range(steps):
        start = VISION_INDEX_OFFSET + (seed * 10_000 + step) * batch
        scenes = [make_scene(config, start + j) for j in range(batch)]
        images = np.stack([np.asarray(render(s, config.image_size)) for s in scenes])
        labels = [patch_labels(s, config, grid) for s in scenes]
        ys = torch.from_numpy(np.stack([a for a, _ in labels]))
        yc = torch.from_numpy(np.stack([b for _, b in labels]))
        hidden = tower(pixel_values=normalize(images), output_hidden_states=True).hidden_states[-2]
        patches = hidden[:, 1:]
        logits_s, logits_c = shape_head(patches), color_head(patches)
        loss = _ce(logits_s, ys) + _ce(logits_c, yc)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        with torch.no_grad():
            acc = float(((logits_s.argmax(-1) == ys) & (logits_c.argmax(-1) == yc)).float().mean())
        if progress is not None:
            progress("vision", step + 1, steps, {"loss": float(loss.detach()), "patch_acc": acc})
    tower.eval()
    return acc


def _ce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    import torch

    return torch.nn.functional.cross_entropy(logits.flatten(0, 1), target.flatten())

"""The embedded demo models: tiny trained LLaVA-1.5s that ship inside the package.

A first run of cliffscope needs a model that fits on a laptop CPU and genuinely uses its
image, so the `demo` profile points at `DEMO_DIR` (4 layers, trained on one task) and the
`demo-deep` profile at `DEEP_DIR` (deeper, trained the LLaVA way: text first, then projector
alignment, then instruction tuning). Both are `save_pretrained` directories loadable with
`LlavaForConditionalGeneration.from_pretrained` and `AutoProcessor.from_pretrained`.
`cliffscope demo build [--deep]` (`build.build_demo`, `build_deep.build_deep`) reproduces
them from their seeds. Importing this package does not import torch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: Directory of the shipped weights, processor, chat template and `manifest.json`.
DEMO_DIR = Path(__file__).resolve().parent / "weights"
#: Directory of the shipped deep demo (same layout as `DEMO_DIR`).
DEEP_DIR = Path(__file__).resolve().parent / "weights-deep"

_REQUIRED = ("config.json", "model.safetensors", "processor_config.json", "tokenizer.json")


def builtin_models() -> dict[str, Path]:
    """``builtin:<name>`` model sources -> their directories (read at call time)."""
    return {"demo": DEMO_DIR, "demo-deep": DEEP_DIR}


def demo_available(path: Path = DEMO_DIR) -> bool:
    """True when ``path`` holds a complete demo model (weights, processor and manifest)."""
    return all((path / name).is_file() for name in (*_REQUIRED, "manifest.json"))


def load_manifest(path: Path = DEMO_DIR) -> dict[str, Any]:
    """The build manifest: seed, steps, held-out accuracies, caption score, versions."""
    return json.loads((path / "manifest.json").read_text())

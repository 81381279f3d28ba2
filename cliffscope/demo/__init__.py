"""The embedded demo model: a tiny trained LLaVA-1.5 that ships inside the package.

A first run of cliffscope needs a model that fits on a laptop CPU and genuinely uses its
image, so the `demo` profile points at `DEMO_DIR`, a `save_pretrained` directory loadable
with `LlavaForConditionalGeneration.from_pretrained(DEMO_DIR)` and
`AutoProcessor.from_pretrained(DEMO_DIR)`. `cliffscope demo build` (`build.build_demo`)
reproduces it from its seed. Importing this package does not import torch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: Directory of the shipped weights, processor, chat template and `manifest.json`.
DEMO_DIR = Path(__file__).resolve().parent / "weights"

_REQUIRED = ("config.json", "model.safetensors", "processor_config.json", "tokenizer.json")


def demo_available(path: Path = DEMO_DIR) -> bool:
    """True when ``path`` holds a complete demo model (weights, processor and manifest)."""
    return all((path / name).is_file() for name in (*_REQUIRED, "manifest.json"))


def load_manifest(path: Path = DEMO_DIR) -> dict[str, Any]:
    """The build manifest: seed, steps, held-out accuracies, caption score, versions."""
    return json.loads((path / "manifest.json").read_text())

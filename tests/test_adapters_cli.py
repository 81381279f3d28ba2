"""`cliffscope models check PROFILE` on tiny checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cliffscope.cli.main import cli
from cliffscope.cli.models_cmd import GROUP_STYLES, strip_text
from cliffscope.models.loading import load_adapter
from cliffscope.models.summary import memory, sample_image, summarize
from tests.tiny_models import tiny_profile

pytestmark = pytest.mark.slow


def _write_profile(directory: Path, name: str, model: Path, family: str, extra: str = "") -> None:
    directory.mkdir(exist_ok=True)
    (directory / f"{name}.toml").write_text(
        f'name = "{name}"\nfamily = "{family}"\nmodel = "{model}"\ndtype = "float32"\n'
        f"max_new_tokens = 3\n{extra}"
    )


def test_check_prints_layout_and_groups(tmp_path: Path, tiny_llava_path: Path) -> None:
    _write_profile(tmp_path / "profiles", "tiny", tiny_llava_path, "llava")
    args = ["--profiles-dir", str(tmp_path / "profiles"), "models", "check", "tiny"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "llava  (LlavaForConditionalGeneration)" in out
    assert "4 query / 4 key-value" in out
    assert "16 for a 640x480 image; grids base 4x4" in out
    assert "<image>×16" in out  # the image run is compressed in the strip
    assert " image 16 " in out and "KV cache" in out
    assert "attention sdpa (vision tower sdpa)" in out


def test_check_json_groups(tmp_path: Path, tiny_qwen2_vl_path: Path) -> None:
    extra = 'vision_attn_implementation = "eager"\n'
    _write_profile(tmp_path / "profiles", "tinyq", tiny_qwen2_vl_path, "auto", extra)
    args = ["--profiles-dir", str(tmp_path / "profiles"), "models", "check", "tinyq", "--json"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["family"] == "qwen2-vl" and data["num_kv_heads"] == 2
    assert (data["attn_implementation"], data["vision_attn_implementation"]) == ("sdpa", "eager")
    [[start, stop]] = data["groups"]["image"]  # one run of positions
    assert (
        stop - start == data["image_tokens"] == data["grids"][0]["rows"] * data["grids"][0]["cols"]
    )
    strip = data["strip"]
    image_cells = [p for p in strip if p["group"] == "image"]
    assert image_cells == [
        {"text": "<|image_pad|>", "group": "image", "count": data["image_tokens"]}
    ]
    # vision_start closes the system group, vision_end opens the instruction
    system = [p["text"] for p in strip if p["group"] == "system"]
    instruction = [p["text"] for p in strip if p["group"] == "instruction"]
    assert system[-1] == "<|vision_start|>" and instruction[0] == "<|vision_end|>"
    assert sum(p["count"] for p in strip) == sum(
        stop - start for runs in data["groups"].values() for start, stop in runs
    )


def test_missing_profile_is_a_user_error(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    result = CliRunner().invoke(
        cli, ["--profiles-dir", str(tmp_path / "p"), "models", "check", "nope"]
    )
    assert result.exit_code != 0
    assert "no profile named 'nope'" in str(result.exception)


def test_strip_colours_every_group(tiny_llava_path: Path) -> None:
    adapter = load_adapter(tiny_profile(tiny_llava_path, "llava", max_new_tokens=2))
    summary = summarize(adapter, sample_image(80, 60), "What is the colour?")
    text = strip_text(summary)
    styles = {span.style for span in text.spans}
    expected = {GROUP_STYLES[g] for g, runs in summary.groups.items() if runs}
    assert styles == expected and GROUP_STYLES["image"] in styles
    params, weight_bytes, kv = memory(adapter)
    assert params == sum(p.numel() for p in adapter.model.parameters())
    assert weight_bytes == 4 * params  # float32
    assert kv == 2 * adapter.num_layers * adapter.num_kv_heads * adapter.head_dim * 4 * 1000


@pytest.mark.slow
def test_models_support_runs_the_conformance_checks() -> None:
    """`models support` builds the tiny checkpoints and reports every check it ran."""
    from cliffscope.conformance.checks import CHECKS

    args = ["models", "support", "--family", "mistral3", "--attn", "sdpa", "--json"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    [row] = data["rows"]
    assert (row["family"], row["attn"], row["dtype"]) == ("mistral3", "sdpa", "float32")
    assert set(row["checks"]) == set(CHECKS) and all(c["passed"] for c in row["checks"].values())
    assert data["versions"]["transformers"]
    bad = CliRunner().invoke(cli, ["models", "support", "--family", "gpt2"])
    assert bad.exit_code != 0 and "unknown family 'gpt2'" in str(bad.exception)

"""Profiles: shipped ones validate; mistakes are named by file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from cliffscope.cli.main import cli
from cliffscope.errors import ValidationError
from cliffscope.paths import BUILTIN_PROFILES_DIR
from cliffscope.profiles import load_profile, save_profile

SHIPPED = {
    "demo": "builtin:demo",
    "demo-deep": "builtin:demo-deep",
    "llava-1.5-7b": "llava-hf/llava-1.5-7b-hf",
    "llava-1.5-13b": "llava-hf/llava-1.5-13b-hf",
    "llava-next-mistral-7b": "llava-hf/llava-v1.6-mistral-7b-hf",
    "qwen2-vl-7b": "Qwen/Qwen2-VL-7B-Instruct",
    "qwen2.5-vl-7b": "Qwen/Qwen2.5-VL-7B-Instruct",
    "qwen3-vl-8b": "Qwen/Qwen3-VL-8B-Instruct",
    "llava-onevision-7b": "llava-hf/llava-onevision-qwen2-7b-ov-hf",
    "internvl3-8b": "OpenGVLab/InternVL3-8B-hf",
    "gemma3-12b": "google/gemma-3-12b-it",
    "idefics3-8b": "HuggingFaceM4/Idefics3-8B-Llama3",
    "smolvlm-2b": "HuggingFaceTB/SmolVLM-Instruct",
    "mistral3-24b": "mistralai/Mistral-Small-3.1-24B-Instruct-2503",
}


def test_shipped_profiles_are_valid_and_safe() -> None:
    assert set(SHIPPED) == {p.stem for p in BUILTIN_PROFILES_DIR.glob("*.toml")}
    for name, model in SHIPPED.items():
        profile = load_profile(BUILTIN_PROFILES_DIR / f"{name}.toml").profile
        assert profile.model == model
        assert profile.trust_remote_code is False
        assert profile.use_safetensors is True


def test_check_command_passes_on_shipped(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["--profiles-dir", str(BUILTIN_PROFILES_DIR), "profiles", "check"]
    )
    assert result.exit_code == 0, result.output
    assert f"{len(SHIPPED)} valid, 0 invalid" in result.output


@pytest.mark.parametrize(
    ("body", "line", "key", "needle"),
    [
        ('name = "p"\nmodel = "m"\nbatchsize = 4\n', 3, "batchsize", "did you mean 'batch_size'"),
        ('name = "p"\nmodel = "m"\n\nbatch_size = "big"\n', 4, "batch_size", "valid integer"),
        ('name = "p"\nmodel = "m"\ndtype = "fp8"\n', 3, "dtype", "'bfloat16'"),
        ('name = "p"\nmodel = "m"\nfamily = "gpt"\n', 3, "family", "llava"),
        ('name = "p"\nmodel = "m"\ntrust_remote_code = "yes"\n', 3, "trust_remote_code", "bool"),
        ('name = "p"\nmodel = "m"\nbatch_size = 0\n', 3, "batch_size", "greater than or equal"),
        (
            'model = "m"\n\n# tower\nvision_attn_implementation = "flash"\n',
            4,
            "vision_attn_implementation",
            "'flash_attention_2'",
        ),  # fmt: skip
    ],
)
def test_errors_name_file_line_and_key(
    tmp_path: Path, body: str, line: int, key: str, needle: str
) -> None:
    path = tmp_path / "p.toml"
    path.write_text(body)
    with pytest.raises(ValidationError) as err:
        load_profile(path)
    assert err.value.where.path == str(path)
    assert err.value.where.line == line
    assert err.value.where.key == key
    assert needle in err.value.render()
    result = CliRunner().invoke(cli, ["profiles", "check", str(path)])
    assert result.exit_code == 1
    assert f"p.toml:{line}" in result.output and key in result.output


def test_table_keys_are_located(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text('name = "p"\nmodel = "m"\n\n[max_memory]\n0 = 20\n')
    with pytest.raises(ValidationError) as err:
        load_profile(path)
    assert err.value.where.line == 5
    assert err.value.where.key == "max_memory.0"


def test_syntax_error_has_a_line(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text('name = "p"\nmodel = "unterminated\n')
    with pytest.raises(ValidationError) as err:
        load_profile(path)
    assert err.value.where.line == 2


def test_save_keeps_comments(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text('# my notes about this model\nname = "p"\nmodel = "m"  # the checkpoint\n')
    save_profile(path, {"batch_size": 2})
    text = path.read_text()
    assert "# my notes about this model" in text and "# the checkpoint" in text
    assert load_profile(path).profile.batch_size == 2
    with pytest.raises(ValidationError):
        save_profile(path, {"batch_size": -1})
    assert load_profile(path).profile.batch_size == 2  # invalid save left the file alone


def test_profile_names_are_path_safe(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text('name = "../../etc"\nmodel = "m"\n')
    with pytest.raises(ValidationError):
        load_profile(path)

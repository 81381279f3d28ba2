"""`load_adapter(profile)`: what reaches `from_pretrained`, family choice, and user errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

from cliffscope.errors import CliffscopeError
from cliffscope.models import loading
from cliffscope.models.llava import LlavaAdapter
from cliffscope.models.loading import detect_family, load_adapter, resolve_model_source
from cliffscope.models.registry import get_adapter_class, list_families, model_types
from tests.tiny_models import tiny_profile

IMAGE = Image.new("RGB", (40, 30), (200, 40, 40))
PROMPT = "What is the colour of the shape?"


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, Any]]:
    """Record the keyword arguments of the model's and the processor's from_pretrained."""
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    calls: dict[str, dict[str, Any]] = {}
    real_model = LlavaForConditionalGeneration.from_pretrained.__func__
    real_proc = AutoProcessor.from_pretrained.__func__

    def model_fp(cls, source, **kwargs):
        calls["model"] = kwargs
        kwargs = {k: v for k, v in kwargs.items() if k not in ("device_map", "max_memory")}
        return real_model(cls, source, **kwargs)

    def proc_fp(cls, source, **kwargs):
        calls["processor"] = kwargs
        return real_proc(cls, source, **kwargs)

    monkeypatch.setattr(LlavaForConditionalGeneration, "from_pretrained", classmethod(model_fp))
    monkeypatch.setattr(AutoProcessor, "from_pretrained", classmethod(proc_fp))
    return calls


def test_default_kwargs_are_safe(tiny_llava_path: Path, spy) -> None:
    load_adapter(tiny_profile(tiny_llava_path, "llava"))
    model_kwargs = spy["model"]
    assert "trust_remote_code" not in model_kwargs and "trust_remote_code" not in spy["processor"]
    assert model_kwargs["use_safetensors"] is True
    assert model_kwargs["dtype"] is torch.float32
    assert "revision" not in model_kwargs
    if not torch.cuda.is_available():
        assert "device_map" not in model_kwargs
    attn = model_kwargs["attn_implementation"]
    assert attn == {"": "sdpa", "text_config": "sdpa", "vision_config": "sdpa"}


def test_profile_options_reach_from_pretrained(tiny_llava_path: Path, spy) -> None:
    profile = tiny_profile(
        tiny_llava_path, "llava", attn="eager", trust_remote_code=True, use_safetensors=False,
        revision="main", device_map="auto", max_memory={"0": "1GiB", "cpu": "4GiB"},
    )  # fmt: skip
    load_adapter(profile)
    kw = spy["model"]
    assert kw["trust_remote_code"] is True and spy["processor"]["trust_remote_code"] is True
    assert kw["revision"] == "main" == spy["processor"]["revision"]
    assert kw["use_safetensors"] is None
    assert kw["device_map"] == "auto"
    assert kw["max_memory"] == {0: "1GiB", "cpu": "4GiB"}
    assert kw["attn_implementation"] == {
        "": "eager",
        "text_config": "eager",
        "vision_config": "sdpa",
    }


@pytest.mark.slow
def test_eager_decoder_keeps_sdpa_vision_and_same_logits(tiny_llava_path: Path) -> None:
    sdpa = load_adapter(tiny_profile(tiny_llava_path, "llava"))
    eager = load_adapter(tiny_profile(tiny_llava_path, "llava", attn="eager"))
    assert eager.text_attention() == "eager"
    assert eager.model.config.vision_config._attn_implementation == "sdpa"
    batch = sdpa.build_batch([IMAGE], [PROMPT])
    with torch.no_grad():
        a = sdpa.model(**batch.inputs).logits
        b = eager.model(**batch.inputs).logits
    torch.testing.assert_close(a, b, atol=1e-4, rtol=0)

    sdpa.set_text_attention("eager")
    assert sdpa.text_attention() == "eager"
    assert sdpa.model.config.vision_config._attn_implementation == "sdpa"
    # the layers run cliffscope's wrapper around the eager kernel (see models/kernel.py)
    assert sdpa.decoder_layers()[0].self_attn.config._attn_implementation == "cliffscope_eager"


@pytest.mark.slow
def test_vision_attn_implementation_reaches_the_tower_only(tiny_llava_path: Path) -> None:
    """An eager tower under an sdpa decoder: set on the loaded vision config and its layers."""
    from cliffscope.models.summary import vision_attention

    sdpa = load_adapter(tiny_profile(tiny_llava_path, "llava"))
    eager = load_adapter(tiny_profile(tiny_llava_path, "llava", vision_attn_implementation="eager"))
    assert eager.model.config.vision_config._attn_implementation == "eager"
    tower = eager.model.model.vision_tower
    attentions = [m for name, m in tower.named_modules() if name.endswith("self_attn")]
    assert len(attentions) == 2 and all(
        m.config._attn_implementation == "eager" for m in attentions
    )
    assert eager.text_attention() == "sdpa" and vision_attention(eager.model.config) == "eager"
    assert vision_attention(sdpa.model.config) == "sdpa"
    batch = sdpa.build_batch([IMAGE], [PROMPT])
    with torch.no_grad():
        a = sdpa.model(**batch.inputs).logits
        b = eager.model(**batch.inputs).logits
    torch.testing.assert_close(a, b, atol=1e-4, rtol=0)


def test_unset_vision_kernel_is_sdpa_or_follows_a_flash_decoder(tiny_llava_path: Path) -> None:
    config = loading.load_config(tiny_profile(tiny_llava_path, "llava"))
    cases = [  # (decoder, tower as set in the profile, tower as loaded)
        ("sdpa", None, "sdpa"),
        ("eager", None, "sdpa"),
        ("flash_attention_2", None, "flash_attention_2"),
        ("flash_attention_2", "sdpa", "sdpa"),
        ("eager", "eager", "eager"),
        ("sdpa", "flash_attention_2", "flash_attention_2"),
    ]
    for decoder, set_tower, tower in cases:
        profile = tiny_profile(
            tiny_llava_path, "llava", attn=decoder, vision_attn_implementation=set_tower
        )
        assert profile.vision_attention == tower
        assert loading.attn_implementation(profile, config) == {
            "": decoder, "text_config": decoder, "vision_config": tower}  # fmt: skip


def test_bfloat16_profile_casts_model_and_pixels(tiny_llava_path: Path) -> None:
    adapter = load_adapter(tiny_profile(tiny_llava_path, "llava", dtype="bfloat16"))
    assert adapter.dtype is torch.bfloat16
    batch = adapter.build_batch([IMAGE], [PROMPT])
    assert batch.inputs["pixel_values"].dtype is torch.bfloat16
    assert batch.input_ids.dtype is torch.long


def test_auto_family_picks_adapter_by_model_type(
    tiny_llava_path: Path, tiny_vipllava_path: Path
) -> None:
    assert isinstance(load_adapter(tiny_profile(tiny_llava_path, "auto")), LlavaAdapter)
    generic = load_adapter(tiny_profile(tiny_vipllava_path, "auto"))
    assert generic.family == "generic"
    assert type(generic.model).__name__ == "VipLlavaForConditionalGeneration"


def test_family_mismatch_is_a_user_error(tiny_llava_path: Path) -> None:
    with pytest.raises(CliffscopeError) as err:
        load_adapter(tiny_profile(tiny_llava_path, "qwen2-vl"))
    assert "'llava'" in err.value.what and err.value.where.key == "family"


def test_detect_family_without_image_token_fails() -> None:
    from transformers import LlamaConfig, LlavaNextConfig, Qwen2_5_VLConfig

    assert detect_family(LlavaNextConfig()) == "llava-next"
    assert detect_family(Qwen2_5_VLConfig()) == "qwen2.5-vl"
    with pytest.raises(CliffscopeError) as err:
        detect_family(LlamaConfig())
    assert "llama" in err.value.what


def test_missing_local_path_names_the_fix(tmp_path: Path) -> None:
    for model in (str(tmp_path / "nope"), "./nope", "a/b/c"):
        with pytest.raises(CliffscopeError) as err:
            resolve_model_source(tiny_profile(model, "llava"))
        assert "does not exist" in err.value.what and "HF_HUB_OFFLINE" in err.value.hint
    with pytest.raises(CliffscopeError, match="no config.json"):
        resolve_model_source(tiny_profile(tmp_path, "llava"))
    assert resolve_model_source(tiny_profile("org/model", "llava")) == "org/model"


def test_unreachable_hub_becomes_user_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from transformers import AutoConfig

    def offline(*args, **kwargs):
        raise OSError("We couldn't connect to 'https://huggingface.co' to load the files")

    monkeypatch.setattr(AutoConfig, "from_pretrained", offline)
    with pytest.raises(CliffscopeError) as err:
        load_adapter(tiny_profile("llava-hf/llava-1.5-7b-hf", "llava"))
    assert "llava-hf/llava-1.5-7b-hf" in err.value.what and "couldn't connect" in err.value.what
    assert "HF_HUB_OFFLINE" in err.value.hint


def test_builtin_demo_resolves_to_demo_dir(
    monkeypatch: pytest.MonkeyPatch, tiny_llava_path: Path, tmp_path: Path
) -> None:
    import cliffscope.demo

    profile = tiny_profile("builtin:demo", "llava")
    monkeypatch.setattr(cliffscope.demo, "DEMO_DIR", tmp_path, raising=False)
    with pytest.raises(CliffscopeError) as err:
        resolve_model_source(profile)
    assert "demo build" in err.value.hint
    monkeypatch.setattr(cliffscope.demo, "DEMO_DIR", tiny_llava_path, raising=False)
    assert resolve_model_source(profile) == str(tiny_llava_path)
    with pytest.raises(CliffscopeError, match="unknown built-in"):
        resolve_model_source(tiny_profile("builtin:other", "llava"))


def test_families_are_declared_by_their_adapter_classes() -> None:
    families = list_families()
    assert {"llava", "llava-next", "qwen2-vl", "qwen2.5-vl", "qwen3-vl", "gemma3"} <= set(families)
    assert families[-1] == "generic"  # the fallback comes last
    for family in families:
        cls = get_adapter_class(family)
        assert cls.family == family and cls.description
        assert all(model_types()[t] == family for t in cls.model_types)
    with pytest.raises(CliffscopeError, match="unknown model family"):
        get_adapter_class("gpt2")
    assert model_types()["qwen2_5_vl"] == "qwen2.5-vl"


def test_build_batch_rejects_mismatched_inputs(tiny_llava_path: Path) -> None:
    adapter = load_adapter(tiny_profile(tiny_llava_path, "llava"))
    with pytest.raises(CliffscopeError, match="one image per prompt"):
        adapter.build_batch([IMAGE, IMAGE], [PROMPT])
    with pytest.raises(CliffscopeError, match="answers"):
        adapter.build_batch([IMAGE], [PROMPT], answers=["a", "b"])

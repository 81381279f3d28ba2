"""The one interface every engine is written against.

Capture, CAM and truncation never ask "is this LLaVA or Qwen?": they ask an adapter where the
decoder layers are, which positions hold the image, and how those positions lie on the image.
The family files (`llava.py`, `llava_next.py`, `qwen2_vl.py`, `generic.py`) answer that; this
module holds the shared data types and the code that is the same for every family (prompt
building with the processor's chat template, group spans from token ids, greedy generation).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from cliffscope.errors import CliffscopeError

if TYPE_CHECKING:
    from PIL import Image

    from cliffscope.profiles import Profile

GROUP_NAMES: tuple[str, ...] = ("system", "image", "instruction", "output")

#: What "greedy" means in cliffscope: the argmax of the raw logits at every step. A checkpoint's
#: generation_config can switch on logits processors (Qwen2-VL-Instruct ships
#: repetition_penalty=1.05); `generate` fills unset arguments from it, the shared sweep decoder
#: applies none, and the baseline would stop being the k = L row. Every call sets them neutral.
GREEDY_GENERATION: dict[str, Any] = {
    "do_sample": False,
    "num_beams": 1,
    "temperature": None,
    "top_p": None,
    "top_k": None,
    "repetition_penalty": 1.0,
    "encoder_repetition_penalty": 1.0,
    "no_repeat_ngram_size": 0,
    "min_new_tokens": 0,
}


@dataclass(frozen=True)
class TokenGroups:
    """Where each token group of one row lies in the (left-padded) batch sequence.

    All spans are `range`s of positions in the padded row, so `length` is the same for every
    row of a batch. `pad` is the left padding (`range(0, n_pad)`); `output` is empty unless
    answers were teacher-forced.
    """

    system: range
    image: range
    instruction: range
    output: range
    pad: range
    length: int

    def spans(self) -> dict[str, range]:
        """The four groups by name, in sequence order (`GROUP_NAMES`)."""
        return {name: getattr(self, name) for name in GROUP_NAMES}

    def counts(self) -> dict[str, int]:
        """Number of tokens per group (the `n_tokens` of a sample line)."""
        return {name: len(span) for name, span in self.spans().items()}

    @property
    def prompt(self) -> range:
        """All non-pad prompt positions (system + image + instruction)."""
        return range(self.system.start, self.instruction.stop)

    @property
    def last_prompt_position(self) -> int:
        """The position whose logits predict the first answer token."""
        return self.instruction.stop - 1

    def group_of(self, position: int) -> str:
        """Group name of a position ("pad" for padding)."""
        if position in self.pad:
            return "pad"
        for name, span in self.spans().items():
            if position in span:
                return name
        raise IndexError(f"position {position} outside a sequence of length {self.length}")


@dataclass(frozen=True)
class ImageGrid:
    """Image-token positions laid out on a 2-D grid, and the image area they cover.

    `positions` are sequence positions in row-major order (`rows * cols` of them), so
    `values[positions].reshape(rows, cols)` is the map. `box` is (x0, y0, x1, y1) in the pixels
    of the ORIGINAL image (before the processor resized it), so a map can be drawn over it.
    """

    positions: list[int]
    rows: int
    cols: int
    box: tuple[float, float, float, float]
    label: str

    def __post_init__(self) -> None:
        if len(self.positions) != self.rows * self.cols:
            raise ValueError(
                f"grid {self.label!r}: {len(self.positions)} positions for {self.rows}x{self.cols}"
            )

    def to_json(self) -> dict[str, Any]:
        """The `grids` entry of a `maps/<id>.json` file."""
        return {"label": self.label, "rows": self.rows, "cols": self.cols, "box": list(self.box)}


@dataclass
class PreparedBatch:
    """Model inputs for a batch plus everything needed to read the outputs back.

    - `inputs`: the dict for `model(**inputs)` (input_ids, attention_mask, pixel_values and the
      family's extras such as `image_sizes` or `image_grid_thw`), already on `input_device()`.
    - `groups`: one `TokenGroups` per row.
    - `prompt_lengths`: non-pad prompt tokens per row (system + image + instruction).
    - `answer_ids`: the teacher-forced answer token ids per row, or None.
    - `image_sizes`: (width, height) of each row's ORIGINAL image, like `PIL.Image.size`.
    - `texts`: the rendered chat-template prompt per row (before image-token expansion).
    """

    inputs: dict[str, Any]
    groups: list[TokenGroups]
    prompt_lengths: list[int]
    answer_ids: list[list[int]] | None
    image_sizes: list[tuple[int, int]]
    texts: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.groups)

    @property
    def input_ids(self) -> torch.Tensor:
        return self.inputs["input_ids"]

    @property
    def attention_mask(self) -> torch.Tensor:
        return self.inputs["attention_mask"]

    @property
    def seq_len(self) -> int:
        return int(self.inputs["input_ids"].shape[1])


class ModelAdapter(ABC):
    """A loaded model + processor that knows its family's layout.

    Subclasses set `family`/`model_types`, implement `image_grids()` and override
    `model_class()`, `text_model()` or `position_ids()` where their layout differs; everything
    else works from the Hugging Face conventions the supported families share. Construct
    through `cliffscope.models.loading.load_adapter(profile)`.
    """

    family: ClassVar[str] = ""
    #: `config.model_type` values this adapter is made for (empty: any, see GenericAdapter).
    model_types: ClassVar[tuple[str, ...]] = ()

    def __init__(self, model: Any, processor: Any, profile: Profile) -> None:
        self.model = model
        self.processor = processor
        self.profile = profile
        self.model.eval()

    @classmethod
    def model_class(cls) -> Any:
        """The transformers class `from_pretrained` is called on."""
        from transformers import AutoModelForImageTextToText

        return AutoModelForImageTextToText

    # --- architecture -------------------------------------------------------------------

    def text_model(self) -> torch.nn.Module:
        """The decoder stack: a module with `.layers`, `.norm` and `.rotary_emb`.

        All supported families keep it at `model.model.language_model`; other checkpoints are
        searched through `get_decoder()`.
        """
        inner = getattr(self.model, "model", None)
        candidates = [getattr(inner, "language_model", None)]
        if hasattr(self.model, "get_decoder"):
            candidates.append(self.model.get_decoder())
        for module in candidates:
            if module is not None and all(
                hasattr(module, a) for a in ("layers", "norm", "rotary_emb")
            ):
                return module
        raise CliffscopeError(
            f"cannot find the decoder stack of {type(self.model).__name__}",
            hint="this architecture needs its own adapter in cliffscope/models/",
        )

    def decoder_layers(self) -> torch.nn.ModuleList:
        return self.text_model().layers

    def final_norm(self) -> torch.nn.Module:
        return self.text_model().norm

    def rotary_emb(self) -> torch.nn.Module:
        return self.text_model().rotary_emb

    def embed_tokens(self) -> torch.nn.Module:
        return self.text_model().embed_tokens

    def lm_head(self) -> torch.nn.Module:
        return self.model.lm_head

    @property
    def text_config(self) -> Any:
        return self.model.config.get_text_config()

    @property
    def num_layers(self) -> int:
        return len(self.decoder_layers())

    @property
    def num_heads(self) -> int:
        return int(self.text_config.num_attention_heads)

    @property
    def num_kv_heads(self) -> int:
        cfg = self.text_config
        return int(getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads)

    @property
    def hidden_size(self) -> int:
        return int(self.text_config.hidden_size)

    @property
    def head_dim(self) -> int:
        cfg = self.text_config
        return int(getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads)

    @property
    def image_token_id(self) -> int:
        cfg = self.model.config
        token_id = getattr(cfg, "image_token_id", None)
        if token_id is None:
            token_id = getattr(cfg, "image_token_index", None)
        if token_id is None:
            raise CliffscopeError(f"{type(cfg).__name__} has no image_token_id")
        return int(token_id)

    def text_config_key(self) -> str:
        """Name of the decoder's sub-config (e.g. "text_config"), for dict-form settings."""
        text = self.model.config.get_text_config()
        for key in getattr(self.model.config, "sub_configs", {}):
            if getattr(self.model.config, key, None) is text:
                return key
        return ""

    def set_text_attention(self, implementation: str) -> None:
        """Switch only the decoder's attention kernel (e.g. to a registered capture function).

        Uses the dict form of `set_attn_implementation`, so the vision tower keeps its own.
        """
        self.model.set_attn_implementation({self.text_config_key(): implementation})

    def text_attention(self) -> str:
        """The decoder's current attention implementation name."""
        return str(self.text_config._attn_implementation)

    @property
    def tokenizer(self) -> Any:
        return self.processor.tokenizer

    @property
    def device(self) -> torch.device:
        """Device of the input embedding (where `input_ids` must go)."""
        return self.embed_tokens().weight.device

    def input_device(self) -> torch.device:
        return self.device

    @property
    def dtype(self) -> torch.dtype:
        return self.embed_tokens().weight.dtype

    # --- inputs -------------------------------------------------------------------------

    def build_batch(
        self,
        images: list[Image.Image],
        prompts: list[str],
        answers: list[str] | list[list[int]] | None = None,
    ) -> PreparedBatch:
        """Chat-template the prompts, run the processor, left-pad, append teacher-forced answers.

        `answers` may be strings (tokenized without special tokens) or token-id lists (e.g. the
        model's own greedy answer from `generate_ids`), appended right after the assistant prefix.
        """
        from cliffscope.models.batching import build_batch

        return build_batch(self, images, prompts, answers)

    def render_prompt(self, prompt: str) -> str:
        """One user turn (image + text) with the profile's system prompt, ready for generation."""
        messages: list[dict[str, Any]] = []
        system = getattr(self.profile, "system_prompt", None)
        if system:
            messages.append({"role": "system", "content": [{"type": "text", "text": system}]})
        messages.append(
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}
        )
        return self.processor.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False
        )

    def processor_kwargs(self) -> dict[str, Any]:
        """Extra keyword arguments for the processor call (families override)."""
        return {}

    def extra_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Hook to adjust model inputs after re-padding (families override)."""
        return inputs

    def position_ids(self, batch: PreparedBatch) -> torch.Tensor:
        """Positions the decoder's rotary embedding gets in a plain forward of `batch`.

        Llama-style decoders use `arange(seq_len)` shared by all rows, padding included (RoPE
        is relative, so left padding only shifts a row's positions), shape (1, S). Qwen
        families return M-RoPE positions, shape (3, B, S). `rotary_emb()(x, position_ids)`
        gives exactly the (cos, sin) every layer receives.
        """
        return torch.arange(batch.seq_len, device=batch.input_ids.device).unsqueeze(0)

    # --- image layout -------------------------------------------------------------------

    @abstractmethod
    def image_grids(self, batch: PreparedBatch, row: int) -> list[ImageGrid]:
        """Grids of the image tokens of one row, with the pixel box each covers."""

    # --- generation ---------------------------------------------------------------------

    @torch.no_grad()
    def generate_ids(self, batch: PreparedBatch, max_new_tokens: int) -> list[list[int]]:
        """Greedy answer token ids per row, without EOS and padding."""
        out = self.model.generate(
            **batch.inputs,
            **GREEDY_GENERATION,
            max_new_tokens=max_new_tokens,
            pad_token_id=self.tokenizer.pad_token_id,
        )
        new = out[:, batch.seq_len :].tolist()
        stop = set(self.stop_token_ids())
        answers = []
        for ids in new:
            cut = next((i for i, t in enumerate(ids) if t in stop), len(ids))
            answers.append(ids[:cut])
        return answers

    def ignored_generation_settings(self) -> dict[str, Any]:
        """The checkpoint's decoding settings that greedy decoding overrides (for the run log)."""
        config = self.model.generation_config
        ignored = {}
        for key, neutral in GREEDY_GENERATION.items():
            value = getattr(config, key, None)
            if key in ("temperature", "top_p", "top_k") and not getattr(config, "do_sample", False):
                continue  # inert without sampling, whatever the value
            if (
                value is not None
                and value != neutral
                and not (key == "temperature" and value == 1.0)
            ):
                ignored[key] = value
        return ignored

    def generate(self, batch: PreparedBatch, max_new_tokens: int) -> list[str]:
        """Greedy answers, decoded without special tokens and stripped."""
        ids = self.generate_ids(batch, max_new_tokens)
        return [self.decode(a) for a in ids]

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True).strip()

    def stop_token_ids(self) -> list[int]:
        """Ids that end an answer: EOS from generation config, text config and tokenizer, + pad."""
        ids: list[int] = []
        for source in (self.model.generation_config, self.text_config, self.tokenizer):
            value = getattr(source, "eos_token_id", None)
            if isinstance(value, int):
                ids.append(value)
            elif isinstance(value, (list, tuple)):
                ids.extend(int(v) for v in value)
        if self.tokenizer.pad_token_id is not None:
            ids.append(int(self.tokenizer.pad_token_id))
        return ids

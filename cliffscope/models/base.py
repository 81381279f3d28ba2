"""The one interface every engine is written against.

Capture, CAM and truncation never ask "is this LLaVA or Qwen?": they ask an adapter where the
decoder layers are, which positions hold the image, and how those positions lie on the image.
The family files (`llava.py`, `llava_next.py`, `qwen2_vl.py`, `generic.py`) answer that; this
module holds the shared data types and the code that is the same for every family (prompt
building with the processor's chat template, group spans from token ids, greedy generation).
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

from cliffscope.errors import CliffscopeError
from cliffscope.models.batch import (  # noqa: F401 - re-exported: the seam's data types
    GROUP_NAMES,
    ImageGrid,
    PreparedBatch,
    TokenGroups,
    position_runs,
)

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from cliffscope.models.decoding import DecodingPolicy
    from cliffscope.profiles import Profile


class ModelAdapter(ABC):
    """A loaded model + processor that knows its family's layout: the seam every engine uses.

    Engines ask an adapter, never the model: where the decoder layers, final norm and head
    are (`decoder_layers`, `head`), which positions hold the image (`build_batch` -> groups),
    how they lie on the image (`image_grids`), the positions generation uses
    (`position_ids`), each layer's attention window (`layer_windows`), which decoder layer an
    attention module belongs to (`layer_index`), which tokens are vision markers
    (`vision_token_ids`), features a family injects into decoder layers (`injections`), and
    the decoding policy (`policy`). Subclasses set `family` / `model_types`, implement
    `image_grids()`, and override what their layout changes. Construct through
    `cliffscope.models.loading.load_adapter(profile)`.

    On construction the decoder's attention kernel is wrapped by cliffscope's (see
    `models.kernel`): outputs are unchanged until an engine activates a tap.
    """

    family: ClassVar[str] = ""
    #: `config.model_type` values this adapter is made for (empty: any, see GenericAdapter).
    model_types: ClassVar[tuple[str, ...]] = ()
    #: one line for `profiles check` hints, `models support` and docs/models.md
    description: ClassVar[str] = ""
    #: the model's forward soft-caps its final logits with `final_logit_softcapping` (Gemma 2)
    final_softcapping: ClassVar[bool] = False

    def __init__(self, model: Any, processor: Any, profile: Profile) -> None:
        from cliffscope.models import kernel

        self.model = model
        self.processor = processor
        self.profile = profile
        self.model.eval()
        self._base_attention = kernel.install(self)
        #: the checkpoint's generation settings as loaded (the model's own copy is neutralised)
        self.checkpoint_generation_config = copy.deepcopy(model.generation_config)
        self.policy = self._decoding_policy()
        self.policy.clean(model.generation_config, self.tokenizer.pad_token_id)

    @classmethod
    def model_class(cls) -> Any:
        """The transformers class `from_pretrained` is called on."""
        from transformers import AutoModelForImageTextToText

        return AutoModelForImageTextToText

    # --- architecture -------------------------------------------------------------------

    def text_model(self) -> torch.nn.Module:
        """The decoder stack: a module with `.layers` and `.norm`.

        Most families keep it at `model.model.language_model` (Idefics3 on 4.57: `text_model`);
        other checkpoints are searched through `get_decoder()`.
        """
        inner = getattr(self.model, "model", None)
        candidates = [getattr(inner, "language_model", None), getattr(inner, "text_model", None)]
        if hasattr(self.model, "get_decoder"):
            candidates.append(self.model.get_decoder())
        for module in candidates:
            if module is not None and all(hasattr(module, a) for a in ("layers", "norm")):
                return module
        raise CliffscopeError(
            f"cannot find the decoder stack of {type(self.model).__name__}",
            hint="this architecture needs its own adapter in cliffscope/models/",
        )

    def decoder_layers(self) -> torch.nn.ModuleList:
        return self.text_model().layers

    def final_norm(self) -> torch.nn.Module:
        return self.text_model().norm

    def embed_tokens(self) -> torch.nn.Module:
        return self.text_model().embed_tokens

    def lm_head(self) -> torch.nn.Module:
        return self.model.lm_head

    def head(self, hidden: torch.Tensor) -> torch.Tensor:
        """Logits from the last decoder layer's output: final norm, LM head, and the final logit
        soft-capping of families that have it (Gemma), exactly as the model's own forward."""
        import torch

        logits = self.lm_head()(self.final_norm()(hidden))
        cap = getattr(self.text_config, "final_logit_softcapping", None)
        if cap and self.final_softcapping:
            logits = torch.tanh(logits / cap) * cap
        return logits

    def layer_index(self, attention: torch.nn.Module) -> int | None:
        """The decoder layer an attention module belongs to (what kernel taps are keyed by)."""
        index = getattr(attention, "layer_idx", None)
        return index if isinstance(index, int) else None

    def layer_windows(self) -> list[int | None]:
        """Per decoder layer, its sliding attention window in positions (None: full attention).

        Read from the text config the way the modeling code reads it: `layer_types` marks
        sliding layers (Gemma 3, Qwen2 with `use_sliding_window`), else a `sliding_window` set on
        the config applies to every layer (Mistral).
        """
        cfg = self.text_config
        window = getattr(cfg, "sliding_window", None)
        types = getattr(cfg, "layer_types", None)
        n = self.num_layers
        if types:
            return [window if t == "sliding_attention" and window else None for t in types[:n]]
        if window and getattr(cfg, "use_sliding_window", True):
            return [int(window)] * n
        return [None] * n

    def attention_blocks(self, batch: PreparedBatch) -> torch.Tensor | None:
        """(B, S) ids of position blocks that attend to each other both ways besides causally
        (Gemma 3's images), or None (causal only, most families)."""
        return None

    def injections(self) -> Any:
        """Features the family adds into decoder layers at image positions (Qwen3-VL deepstack),
        as a `models.injection.Injections`, or None (most families)."""
        return None

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

    def vision_token_ids(self) -> list[int]:
        """Ids that mark vision content: never valid answer tokens (see `models.decoding`).

        Every `*_token_id` / `*_token_index` of the model config and every `*_token` /
        `*_token_id` of the processor whose name speaks of images, video or vision; families
        add their separators.
        """
        from cliffscope.models.vision_tokens import vision_token_ids

        return vision_token_ids(self.model.config, self.processor, self.tokenizer)

    def text_config_key(self) -> str:
        """Name of the decoder's sub-config (e.g. "text_config"), for dict-form settings."""
        text = self.model.config.get_text_config()
        for key in getattr(self.model.config, "sub_configs", {}):
            if getattr(self.model.config, key, None) is text:
                return key
        return ""

    def set_text_attention(self, implementation: str) -> None:
        """Switch only the decoder's attention kernel (`eager`, `sdpa` ...), keeping
        cliffscope's wrapper around it; the vision tower keeps its own (dict form of the public
        `set_attn_implementation`)."""
        from cliffscope.models import kernel

        name = implementation
        if not implementation.startswith(kernel.PREFIX):
            self._base_attention = implementation
            name = kernel.kernel_name(implementation)
        key = self.text_config_key()
        self.model.set_attn_implementation({key: name} if key else name)

    def text_attention(self) -> str:
        """The decoder's attention kernel as the profile names it (`sdpa`, `eager` ...)."""
        base = getattr(self, "_base_attention", None)
        return base or self.attention_kernel.removeprefix("cliffscope_")

    @property
    def attention_kernel(self) -> str:
        """The name the decoder's layers run under (cliffscope's wrapper of the base kernel)."""
        from cliffscope.models import compat

        return compat.attention_implementation(self.text_config)

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

    def processor_images(self, images: list[Image.Image]) -> list[Any]:
        """Images as the processor wants them for one image per prompt (flat by default;
        Gemma 3 and Idefics3 want one list per prompt)."""
        return list(images)

    def extra_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Hook to adjust model inputs after re-padding (families override)."""
        return inputs

    def position_ids(self, batch: PreparedBatch) -> torch.Tensor:
        """The prompt's position ids exactly as `generate` makes them, shape (B, S).

        Padding-aware (each row counts from its first real token), so a left-padded batch
        answers like its rows one at a time; a plain `model(**inputs)` would number the padding.
        M-RoPE families return (4, B, S): the text row, then temporal / height / width.
        """
        mask = batch.attention_mask.long()
        return (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)

    @staticmethod
    def next_positions(positions: torch.Tensor, repeats: int) -> torch.Tensor:
        """Position ids of the first generated token, repeated `repeats` times along the batch."""
        last = positions[..., -1:] + 1
        return last.repeat(repeats, 1) if last.dim() == 2 else last.repeat(1, repeats, 1)

    def reset_state(self) -> None:
        """Forget state a model keeps between calls (Qwen-VL caches `rope_deltas`)."""
        inner = getattr(self.model, "model", None)
        if inner is not None and hasattr(inner, "rope_deltas"):
            inner.rope_deltas = None

    # --- image layout -------------------------------------------------------------------

    @abstractmethod
    def image_grids(self, batch: PreparedBatch, row: int) -> list[ImageGrid]:
        """Grids of the image tokens of one row, with the pixel box each covers."""

    # --- decoding -----------------------------------------------------------------------

    def _decoding_policy(self) -> DecodingPolicy:
        """The decoding policy of this checkpoint (see `models.decoding`)."""
        from cliffscope.models.decoding import DecodingPolicy

        return DecodingPolicy.from_checkpoint(
            self.checkpoint_generation_config,
            eos_sources=(self.text_config, self.tokenizer),
            pad_token_id=self.tokenizer.pad_token_id,
            vision_token_ids=self.vision_token_ids(),
            vocab_size=int(self.lm_head().weight.shape[0]),
        )

    def generate_ids(self, batch: PreparedBatch, max_new_tokens: int) -> list[list[int]]:
        """Greedy answer token ids per row under the decoding policy, without the stop token."""
        import torch

        from cliffscope.models import compat

        policy = self.policy
        config = policy.generation_config(
            self.model.generation_config, max_new_tokens, self.tokenizer.pad_token_id
        )
        cache = compat.new_dynamic_cache()
        with torch.no_grad():
            out = self.model.generate(
                **batch.inputs,
                generation_config=config,
                logits_processor=policy.logits_processor(batch.seq_len),
                **{compat.cache_kwarg(self.model): cache},
            )
        self.reset_state()
        return [policy.cut(ids) for ids in out[:, batch.seq_len :].tolist()]

    def generate(self, batch: PreparedBatch, max_new_tokens: int) -> list[str]:
        """Greedy answers, decoded without special tokens and stripped."""
        return [self.decode(a) for a in self.generate_ids(batch, max_new_tokens)]

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True).strip()

    def stop_token_ids(self) -> list[int]:
        """Ids that end an answer (the policy's: EOS of generation config, text config and
        tokenizer)."""
        return list(self.policy.stop_ids)

    def ignored_generation_settings(self) -> dict[str, Any]:
        """The checkpoint's decoding settings the policy neutralises (for the run log)."""
        return dict(self.policy.neutralised)

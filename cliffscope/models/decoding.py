"""The one decoding policy every answer-producing path applies: greedy, with deterministic rules.

A checkpoint's `generation_config` can change the argmax in two ways. Deterministic constraints
(a token that may never appear, a sequence that may not be completed, a bias) describe what the
model is allowed to say; cliffscope HONOURS them. Everything else (sampling, penalties that
depend on what was already said, forced or delayed end of sequence, stop strings, beams) is
NEUTRALISED, so "greedy" means the same on every path:

honoured — applied by `DecodingPolicy.adjust` on the logits of every step:
- `suppress_tokens`: never emitted;
- `begin_suppress_tokens`: not emitted as the first answer token;
- `bad_words_ids`: one-token entries never emitted, longer ones never completed (the prefix is
  matched against the end of prompt + answer so far, as generate's processor does);
- `sequence_bias`: the same matching, adding the bias instead of forbidding;
- `eos_token_id` (an int or a list), with the text config's and the tokenizer's EOS: stop tokens.

always added:
- vision special tokens (image and video placeholders, begin/end-of-image markers, separators
  inside an image run: `ModelAdapter.vision_token_ids`) and the pad token (unless it is also EOS)
  are never valid answer tokens.

neutralised (`NEUTRAL`): sampling and its warpers, repetition / n-gram penalties, min length,
forced BOS / EOS, exponential length penalty, guidance, watermarking, stop strings, beams, and a
static or hybrid cache implementation (truncation needs a dynamic cache).

Both the shared sweep decoder and `generate` (through `logits_processor`, with the honoured fields
cleared from the copy of the generation config it gets so they are not applied twice) call
`adjust`; tests hold every path to the same answers, token by token.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

#: Generation-config fields set to these values on every call (those present in the installed
#: transformers; others are skipped).
NEUTRAL: dict[str, Any] = {
    "do_sample": False,
    "num_beams": 1,
    "num_beam_groups": 1,
    "diversity_penalty": 0.0,
    "temperature": None,
    "top_p": None,
    "top_k": None,
    "min_p": None,
    "top_h": None,
    "typical_p": None,
    "epsilon_cutoff": None,
    "eta_cutoff": None,
    "repetition_penalty": 1.0,
    "encoder_repetition_penalty": 1.0,
    "no_repeat_ngram_size": 0,
    "encoder_no_repeat_ngram_size": 0,
    "min_length": 0,
    "min_new_tokens": None,
    "forced_bos_token_id": None,
    "forced_eos_token_id": None,
    "exponential_decay_length_penalty": None,
    "guidance_scale": None,
    "watermarking_config": None,
    "renormalize_logits": False,
    "remove_invalid_values": False,
    "stop_strings": None,
    "max_time": None,
    "cache_implementation": None,
}

#: Fields the policy applies itself; cleared in the config handed to generate.
HONOURED: tuple[str, ...] = (
    "suppress_tokens",
    "begin_suppress_tokens",
    "bad_words_ids",
    "sequence_bias",
)

# A neutral value equal to these is not worth a log line (generate's own defaults).
_INERT_DEFAULTS: dict[str, tuple[Any, ...]] = {
    "temperature": (1.0,),
    "top_p": (1.0,),
    "top_k": (50, 0),
    "num_beam_groups": (1,),
    "renormalize_logits": (False,),
    "remove_invalid_values": (False,),
    "diversity_penalty": (0.0,),
}


@dataclass(frozen=True)
class ConditionalBias:
    """Add `bias` (-inf: forbid) to `token` when the context ends with `prefix`."""

    prefix: tuple[int, ...]
    token: int
    bias: float


def _ids(value: Any) -> list[int]:
    if value is None:
        return []
    if isinstance(value, int):
        return [value]
    return [int(v) for v in value]


def _sequence_biases(value: Any) -> list[tuple[tuple[int, ...], float]]:
    """`sequence_bias` as a dict {tuple: bias} or a list [[ids, bias], ...]."""
    if not value:
        return []
    items = value.items() if isinstance(value, dict) else value
    return [(tuple(int(t) for t in seq), float(bias)) for seq, bias in items]


@dataclass
class DecodingPolicy:
    """What every answer path does to the logits before taking the argmax."""

    vocab_size: int
    stop_ids: tuple[int, ...]
    always_forbidden: tuple[int, ...]
    first_forbidden: tuple[int, ...] = ()
    conditional: tuple[ConditionalBias, ...] = ()
    applied: dict[str, Any] = field(default_factory=dict)
    neutralised: dict[str, Any] = field(default_factory=dict)

    # ---- building --------------------------------------------------------------------------
    @classmethod
    def from_checkpoint(
        cls,
        generation_config: Any,
        eos_sources: Iterable[Any],
        pad_token_id: int | None,
        vision_token_ids: Sequence[int],
        vocab_size: int,
    ) -> DecodingPolicy:
        stop: list[int] = _ids(getattr(generation_config, "eos_token_id", None))
        for source in eos_sources:
            stop.extend(_ids(getattr(source, "eos_token_id", None)))
        stop_ids = tuple(dict.fromkeys(stop))
        forbidden = [*_ids(getattr(generation_config, "suppress_tokens", None)), *vision_token_ids]
        if pad_token_id is not None and pad_token_id not in stop_ids:
            forbidden.append(int(pad_token_id))
        conditional: list[ConditionalBias] = []
        for word in getattr(generation_config, "bad_words_ids", None) or []:
            word = _ids(word)
            if len(word) == 1:
                forbidden.append(word[0])
            elif word:
                conditional.append(ConditionalBias(tuple(word[:-1]), word[-1], -math.inf))
        for seq, bias in _sequence_biases(getattr(generation_config, "sequence_bias", None)):
            conditional.append(ConditionalBias(seq[:-1], seq[-1], bias))
        forbidden_ids = tuple(t for t in dict.fromkeys(forbidden) if 0 <= t < vocab_size)
        policy = cls(
            vocab_size=vocab_size,
            stop_ids=stop_ids,
            always_forbidden=forbidden_ids,
            first_forbidden=tuple(_ids(getattr(generation_config, "begin_suppress_tokens", None))),
            conditional=tuple(conditional),
        )
        policy.applied = policy._applied_summary(generation_config, vision_token_ids, pad_token_id)
        policy.neutralised = neutralised_settings(generation_config)
        return policy

    def _applied_summary(
        self, config: Any, vision_ids: Sequence[int], pad: int | None
    ) -> dict[str, Any]:
        out: dict[str, Any] = {"eos_token_id": list(self.stop_ids)}
        for key in HONOURED:
            value = getattr(config, key, None)
            if value:
                out[key] = value
        if vision_ids:
            out["vision_tokens_suppressed"] = sorted(set(vision_ids))
        if pad is not None and pad not in self.stop_ids:
            out["pad_suppressed"] = pad
        return out

    # ---- applying --------------------------------------------------------------------------
    def adjust(
        self, logits: torch.Tensor, contexts: Sequence[Sequence[int]], step: int
    ) -> torch.Tensor:
        """Logits (N, V) of answer step `step` (0 = first token) for rows whose prompt + answer
        so far is `contexts[i]`; returns the adjusted logits (a new tensor, float32)."""
        out = logits.float().clone()
        if self.always_forbidden:
            out[:, list(self.always_forbidden)] = -math.inf
        if step == 0 and self.first_forbidden:
            out[:, list(self.first_forbidden)] = -math.inf
        for rule in self.conditional:
            n = len(rule.prefix)
            for row, context in enumerate(contexts):
                if n <= len(context) and tuple(context[len(context) - n :]) == rule.prefix:
                    out[row, rule.token] += rule.bias
        return out

    def choose(
        self, logits: torch.Tensor, contexts: Sequence[Sequence[int]], step: int
    ) -> torch.Tensor:
        """The greedy token per row under the policy (N,)."""
        return self.adjust(logits, contexts, step).argmax(dim=-1)

    def cut(self, ids: Sequence[int]) -> list[int]:
        """An answer up to (not including) its first stop token."""
        stop = set(self.stop_ids)
        return [
            int(t) for t in ids[: next((i for i, t in enumerate(ids) if int(t) in stop), len(ids))]
        ]

    # ---- generate ---------------------------------------------------------------------------
    def clean(self, config: Any, pad_token_id: int | None) -> None:
        """Make a model's own generation config neutral, IN PLACE.

        `generate` fills every field a caller leaves at its default from the model's config, so
        a neutral value passed per call is not enough (None would be refilled with the
        checkpoint's `forced_eos_token_id`, say): the model's config itself says nothing but
        the policy's stop tokens. The honoured fields are cleared because the policy's logits
        processor applies them.
        """
        for key, value in NEUTRAL.items():
            if hasattr(config, key):
                setattr(config, key, value)
        for key in HONOURED:
            if hasattr(config, key):
                setattr(config, key, None)
        config.eos_token_id = list(self.stop_ids) or None
        config.pad_token_id = pad_token_id

    def generation_config(self, config: Any, max_new_tokens: int, pad_token_id: int | None) -> Any:
        """A neutral copy of `config` (see `clean`) for one `generate` call."""
        out = copy.deepcopy(config)
        self.clean(out, pad_token_id)
        out.max_new_tokens = max_new_tokens
        out.max_length = None
        return out

    def logits_processor(self, prompt_length: int) -> Any:
        """This policy as a transformers logits processor for a prompt of `prompt_length`."""
        from transformers import LogitsProcessor, LogitsProcessorList

        policy = self

        class PolicyProcessor(LogitsProcessor):
            def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
                step = input_ids.shape[1] - prompt_length
                contexts = input_ids.tolist() if policy.conditional else [[]] * len(input_ids)
                return policy.adjust(scores, contexts, step).to(scores.dtype)

        return LogitsProcessorList([PolicyProcessor()])

    def log_lines(self) -> list[str]:
        """What the run log says about decoding."""
        applied = ", ".join(f"{k}={v}" for k, v in self.applied.items())
        lines = [f"decoding: greedy; applied {applied}"]
        if self.neutralised:
            settings = ", ".join(f"{k}={v}" for k, v in sorted(self.neutralised.items()))
            lines.append(f"decoding: the checkpoint's {settings} neutralised")
        return lines


def neutralised_settings(config: Any) -> dict[str, Any]:
    """The checkpoint's non-neutral values of the fields the policy neutralises."""
    out: dict[str, Any] = {}
    sampling = bool(getattr(config, "do_sample", False))
    for key, neutral in NEUTRAL.items():
        if not hasattr(config, key):
            continue
        value = getattr(config, key)
        if value is None or value == neutral or value in _INERT_DEFAULTS.get(key, ()):
            continue
        if key in ("temperature", "top_p", "top_k", "min_p", "typical_p", "top_h") and not sampling:
            continue  # warpers are inert without sampling
        out[key] = value
    return out

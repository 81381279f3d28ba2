"""Attention knockout: block one group's queries from another group's keys in a window of layers
and measure how much the probability of the model's own answer falls.

Geva et al. 2023 (text) and Zhang et al. 2024 ("Cross-modal Information Flow in Multimodal
Large Language Models", arXiv 2411.18620) block the attention edges from a source group to a
target group (`knockout_edges`: system, image, instruction, last) in layers l .. l+w-1 and
teacher-force the answer the untouched model gave. Nothing is removed: the blocked pairs are
taken out of the model's OWN mask (`masks.visible_from_mask`: None under sdpa without padding,
4-D boolean under sdpa, additive float under eager; windows and both-ways blocks included) by
a tap of cliffscope's attention kernel (`models.kernel`) and handed back in the kernel's format
(`masks.format_mask`). A target query always keeps its own key, so no softmax row is emptied.
Flash-attention and flex kernels cannot take such masks and are refused.

Scores, per (edge, window start) and batch row, from the raw model distribution (the final
logits the model outputs, soft-capping included; no decoding-policy adjustments):

- `first`: log p(first answer token | prompt), read at the last prompt position;
- `answer`: sum over the answer's tokens of log p(token | everything before it);

and the same for the baseline. A row with an empty answer scores NaN. The relative changes are
(p_knock - p_base) / p_base = exp(logp_knock - logp_base) - 1.

`knockout_naive` runs one forward per (edge, start); `knockout_shared` (`knockout_shared.py`)
gives the same numbers from one baseline forward and a batched recompute of the rows after the
first target position.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from cliffscope.engines.masks import format_mask, visible_from_mask
from cliffscope.errors import CliffscopeError
from cliffscope.knockout_edges import GROUPS, LAST, Edge, parse_edge
from cliffscope.models.kernel import tapping

if TYPE_CHECKING:
    from cliffscope.models.base import ModelAdapter, PreparedBatch

KERNELS = ("eager", "sdpa")


# ---- groups and blocked pairs -------------------------------------------------------------------


def group_masks(batch: PreparedBatch) -> dict[str, torch.Tensor]:
    """(B, S) boolean position masks of the knockout groups (`knockout_edges.GROUPS`): the
    batch's groups with the last prompt position taken out of whichever group held it."""
    shape = (len(batch), batch.seq_len)
    out = {name: torch.zeros(shape, dtype=torch.bool) for name in GROUPS}
    for row, groups in enumerate(batch.groups):
        last = groups.last_prompt_position
        for name in GROUPS:
            if name != LAST:  # the batch's own groups, without the last prompt position
                out[name][row, list(getattr(groups, name))] = True
                out[name][row, last] = False
        out[LAST][row, last] = True
    device = batch.input_ids.device
    return {name: mask.to(device) for name, mask in out.items()}


def blocked_pairs(
    groups: dict[str, torch.Tensor], edges: Iterable[Edge], queries: slice = slice(None)
) -> torch.Tensor:
    """(B, Q, S) boolean: query q may not see key k (the union of the edges' pairs), for the
    query positions `queries` of the sequence."""
    edges = list(edges)
    first = groups[edges[0].target]
    out = torch.zeros(
        first.shape[0], first[:, queries].shape[1], first.shape[1], dtype=torch.bool,
        device=first.device,
    )  # fmt: skip
    for edge in edges:
        out |= groups[edge.target][:, queries, None] & groups[edge.source][:, None, :]
    return out


def blocked_mask(
    visible: torch.Tensor, blocked: torch.Tensor, kernel: str, dtype: torch.dtype
) -> Any:
    """The kernel's mask for `visible` (B, 1|H, Q, K) minus `blocked` (B, Q, K) pairs."""
    allowed = visible & ~blocked[:, None]
    batch, heads, n_q, n_k = allowed.shape
    mask = format_mask(allowed.reshape(batch * heads, n_q, n_k), kernel, dtype)
    return mask.reshape(batch, heads, n_q, n_k)


def mask_dtype(mask: Any, query: torch.Tensor) -> torch.dtype:
    """The dtype an additive mask must have: the model's own mask's, else the query's."""
    if isinstance(mask, torch.Tensor) and mask.is_floating_point():
        return mask.dtype
    return query.dtype


def check_kernel(adapter: ModelAdapter) -> None:
    """Knockout rewrites arbitrary (query, key) pairs: only eager and sdpa take such masks."""
    kernel = adapter.text_attention()
    if kernel not in KERNELS:
        raise CliffscopeError(
            f"attention knockout cannot run on the {kernel} kernel: it takes no arbitrary mask",
            hint='use attn_implementation = "sdpa" (or "eager") in the profile for this run',
        )


class BlockTap:
    """Kernel tap: in `layers`, the model's own mask minus the blocked pairs (B, S, S).

    A model hands every layer of one type the same mask object, so the replacement is made once
    per mask (the entry keeps the mask alive, so its id cannot be reused by another one)."""

    def __init__(self, adapter: ModelAdapter, blocked: torch.Tensor, layers: Iterable[int]) -> None:
        self.layer_index = adapter.layer_index
        self.kernel = adapter.attention_kernel
        self.blocked = blocked
        self.layers = set(layers)
        self._made: dict[tuple[int, torch.device], tuple[Any, Any]] = {}

    def __call__(
        self, module: torch.nn.Module, query: torch.Tensor, key: Any, mask: Any, kwargs: dict
    ) -> Any:
        if self.layer_index(module) not in self.layers:
            return None
        batch, _, n_q, _ = query.shape
        n_k, length = key.shape[2], self.blocked.shape[1]
        if n_q != length or n_k != length:
            raise CliffscopeError(
                f"knockout expects one uncached forward over all {length} positions "
                f"(got {n_q} queries over {n_k} keys)",
                hint="run the teacher-forced batch in one forward, without a cache",
            )
        slot = (id(mask), query.device)
        made = self._made.get(slot)
        if made is None or made[0] is not mask:
            rows = torch.arange(n_q, device=query.device).expand(batch, n_q)
            visible = visible_from_mask(mask, rows, n_q, n_k, query.device)
            blocked = self.blocked.to(query.device)
            made = (mask, blocked_mask(visible, blocked, self.kernel, mask_dtype(mask, query)))
            self._made[slot] = made
        return made[1]


@contextlib.contextmanager
def blocking(
    adapter: ModelAdapter, batch: PreparedBatch, edges: Iterable[Edge | str], layers: Iterable[int]
) -> Iterator[None]:
    """Context manager: forwards of `batch` inside it (one uncached forward over the whole
    sequence) have the edges' pairs blocked in `layers`."""
    check_kernel(adapter)
    edges = [parse_edge(e) if isinstance(e, str) else e for e in edges]
    tap = BlockTap(adapter, blocked_pairs(group_masks(batch), edges), layers)
    with tapping(tap):
        yield


def window_layers(start: int, window: int, n_layers: int) -> range:
    """The layers a window of `window` layers starting at `start` blocks (clipped at L)."""
    return range(start, min(start + window, n_layers))


# ---- scoring the teacher-forced answer ----------------------------------------------------------


@dataclass(frozen=True)
class Scoring:
    """Where the teacher-forced answer is read: logits at positions `start` .. S-2 predict the
    tokens `targets` (B, T) at `start + 1` .. S-1; `weights` (B, T) marks answer tokens, `first`
    (B,) the index (into T) of each row's first answer token; `empty` (B,) rows without one."""

    start: int
    targets: torch.Tensor
    weights: torch.Tensor
    first: torch.Tensor
    empty: torch.Tensor


def scoring(batch: PreparedBatch) -> Scoring:
    """The answer-reading plan of a teacher-forced batch."""
    if batch.answer_ids is None:
        raise CliffscopeError(
            "knockout needs a teacher-forced batch",
            hint="build it with adapter.build_batch(images, prompts, answers=answer_ids)",
        )
    start = min(g.last_prompt_position for g in batch.groups)
    ids = batch.input_ids
    targets = ids[:, start + 1 :]
    weights = torch.zeros(targets.shape, dtype=torch.bool, device=ids.device)
    for row, groups in enumerate(batch.groups):
        weights[row, groups.output.start - start - 1 : groups.output.stop - start - 1] = True
    # a row without an answer reads index 0 and scores NaN
    first = [g.last_prompt_position - start if len(g.output) else 0 for g in batch.groups]
    empty = [not len(g.output) for g in batch.groups]
    first, empty = torch.tensor(first, device=ids.device), torch.tensor(empty, device=ids.device)
    return Scoring(start, targets, weights, first, empty)


def score(logits: torch.Tensor, plan: Scoring) -> tuple[torch.Tensor, torch.Tensor]:
    """(first-token, whole-answer) log-probs (B,) from logits (B, T, V) at positions
    `plan.start` .. S-2 (float64; NaN for rows without an answer)."""
    nan = torch.full((logits.shape[0],), float("nan"), dtype=torch.float64)
    if logits.shape[1] == 0:  # no row has an answer
        return nan, nan.clone()
    logp = torch.log_softmax(logits.float(), dim=-1)
    picked = logp.gather(-1, plan.targets[..., None].to(logp.device))[..., 0].double().cpu()
    first = picked[torch.arange(picked.shape[0]), plan.first.cpu()]
    answer = (picked * plan.weights.cpu()).sum(-1)
    empty = plan.empty.cpu()
    return torch.where(empty, nan, first), torch.where(empty, nan, answer)


# ---- results ----------------------------------------------------------------------------------


@dataclass
class KnockoutOutput:
    """Log-probs of the teacher-forced answer per (edge, window start) and row.

    `first[e, s, b]` / `answer[e, s, b]`: first answer token / whole answer with edge
    `edges[e]` blocked in layers `starts[s]` .. `starts[s] + window - 1` (clipped at L);
    `base_first[b]` / `base_answer[b]`: the untouched model. float64; NaN for empty answers.
    """

    edges: list[Edge]
    starts: list[int]
    window: int
    n_layers: int
    first: np.ndarray
    answer: np.ndarray
    base_first: np.ndarray
    base_answer: np.ndarray

    def layers(self, start: int) -> range:
        """The layers a window starting at `start` blocks."""
        return window_layers(start, self.window, self.n_layers)

    def first_change(self) -> np.ndarray:
        """[E, W, B] relative change (p_knock - p_base) / p_base of the first-token probability."""
        return np.expm1(self.first - self.base_first)

    def answer_change(self) -> np.ndarray:
        """[E, W, B] relative change of the whole answer's probability (product over tokens)."""
        return np.expm1(self.answer - self.base_answer)

    def at(self, edge: Edge | str, start: int) -> tuple[np.ndarray, np.ndarray]:
        """(first, answer) log-probs (B,) of one branch."""
        edge = parse_edge(edge) if isinstance(edge, str) else edge
        e, s = self.edges.index(edge), self.starts.index(start)
        return self.first[e, s], self.answer[e, s]


def resolve(
    adapter: ModelAdapter,
    batch: PreparedBatch,
    edges: Sequence[Edge | str],
    window: int,
    starts: Sequence[int] | None,
) -> tuple[list[Edge], list[int], Scoring]:
    """Checked edges, sorted window starts (None: every layer) and the batch's scoring plan."""
    check_kernel(adapter)
    n_layers = adapter.num_layers
    parsed: list[Edge] = []
    for edge in edges:
        edge = parse_edge(edge) if isinstance(edge, str) else edge
        if edge not in parsed:
            parsed.append(edge)
    if not parsed:
        raise CliffscopeError("knockout got no edge to block")
    if int(window) != window or window < 0:
        raise CliffscopeError(f"knockout window {window!r} must be a whole number of layers >= 0")
    out = sorted({int(s) for s in (range(n_layers) if starts is None else starts)})
    bad = [s for s in out if not 0 <= s < n_layers]
    if bad or not out:
        raise CliffscopeError(
            f"knockout window starts {bad or 'none'} outside 0..{n_layers - 1}",
            hint=f"the model has {n_layers} decoder layers",
        )
    return parsed, out, scoring(batch)


def _forward_scores(
    adapter: ModelAdapter, batch: PreparedBatch, plan: Scoring
) -> tuple[torch.Tensor, torch.Tensor]:
    keep = batch.seq_len - plan.start
    out = adapter.model(
        **batch.inputs, position_ids=adapter.position_ids(batch), use_cache=False,
        logits_to_keep=keep,
    )  # fmt: skip
    adapter.reset_state()
    return score(out.logits[:, -keep:-1], plan)


@torch.no_grad()
def knockout_naive(
    adapter: ModelAdapter,
    batch: PreparedBatch,
    edges: Sequence[Edge | str],
    window: int,
    starts: Sequence[int] | None = None,
) -> KnockoutOutput:
    """The reference: one forward of the teacher-forced `batch` per (edge, window start)."""
    edges, starts, plan = resolve(adapter, batch, edges, window, starts)
    base_first, base_answer = _forward_scores(adapter, batch, plan)
    shape = (len(edges), len(starts), len(batch))
    first, answer = np.empty(shape), np.empty(shape)
    n_layers = adapter.num_layers
    for e, edge in enumerate(edges):
        for s, start in enumerate(starts):
            with blocking(adapter, batch, [edge], window_layers(start, window, n_layers)):
                f, a = _forward_scores(adapter, batch, plan)
            first[e, s], answer[e, s] = f.numpy(), a.numpy()
    return KnockoutOutput(
        edges, starts, int(window), n_layers, first, answer, base_first.numpy(),
        base_answer.numpy(),
    )  # fmt: skip

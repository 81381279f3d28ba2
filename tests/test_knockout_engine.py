"""Attention knockout on the tiny families: the properties of issue 17 item 4.

Per family (LLaVA; Qwen2-VL's M-RoPE; Gemma 3's sliding layers, two rotary tables and both-ways
image blocks; Qwen3-VL's deepstack; Idefics3's text markers inside the image span), eager and
sdpa, float32, on a left-padded batch of two rows teacher-forced with the model's own greedy
answer: the prefix-shared engine equals one forward per branch; a zero-layer window is the
baseline exactly; image->last plus image->instruction in every layer is k = 0 truncation at
the last position; blocking acts in the stated direction only; eager equals sdpa; a batch
equals its rows one at a time.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cliffscope.conformance.builders import tiny_profile
from cliffscope.conformance.suite import PROMPTS, checkpoint, images
from cliffscope.engines.knockout import blocking, group_masks, knockout_naive
from cliffscope.engines.knockout_shared import knockout_shared
from cliffscope.engines.truncation import truncate
from cliffscope.errors import CliffscopeError
from cliffscope.knockout_edges import DEFAULT_EDGES, Edge
from cliffscope.models.loading import load_adapter

pytestmark = pytest.mark.slow

FAMILIES = ("llava", "qwen2-vl", "gemma3", "qwen3-vl", "idefics3")
#: the defaults plus edges whose targets are image rows (blocks, deepstack) and, in Idefics3,
#: instruction markers inside the image span
EDGES = [*DEFAULT_EDGES, Edge("system", "image"), Edge("instruction", "image")]
ATOL = 1e-5
NEW_TOKENS = 4


class Case:
    """One family: sdpa and eager adapters and the teacher-forced batch (sdpa's greedy answer)."""

    def __init__(self, family: str) -> None:
        path = checkpoint(family)
        self.adapters = {a: load_adapter(tiny_profile(path, family, a)) for a in ("sdpa", "eager")}
        sdpa = self.adapters["sdpa"]
        self.answers = sdpa.generate_ids(sdpa.build_batch(images(), PROMPTS), NEW_TOKENS)
        assert all(self.answers), "every row needs a non-empty answer to score"

    def batch(self, attn: str, rows: slice = slice(None)):
        return self.adapters[attn].build_batch(
            images()[rows], PROMPTS[rows], answers=self.answers[rows]
        )


@pytest.fixture(scope="module", params=FAMILIES)
def case(request: pytest.FixtureRequest) -> Case:
    return Case(request.param)


def _close(a, b, atol: float = ATOL) -> None:
    for name in ("first", "answer", "base_first", "base_answer"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), atol=atol, rtol=0)


def _logits(adapter, batch) -> torch.Tensor:
    with torch.no_grad():
        out = adapter.model(
            **batch.inputs, position_ids=adapter.position_ids(batch), use_cache=False
        ).logits
    adapter.reset_state()
    return out.float()


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_shared_equals_naive(case: Case, attn: str) -> None:
    adapter, batch = case.adapters[attn], case.batch(attn)
    n_layers = adapter.num_layers
    for window, starts in ((1, None), (2, None), (9, [1, n_layers - 1])):
        naive = knockout_naive(adapter, batch, EDGES, window, starts)
        shared = knockout_shared(adapter, batch, EDGES, window, starts)
        _close(shared, naive)
        assert shared.starts == (starts or list(range(n_layers)))
    # the comparison is not between two copies of the baseline: blocking moved the answer
    assert np.abs(naive.first - naive.base_first).max() > 1e-3
    assert np.abs(naive.answer - naive.base_answer).max() > 1e-3


def test_a_zero_layer_window_is_the_baseline_exactly(case: Case) -> None:
    adapter, batch = case.adapters["sdpa"], case.batch("sdpa")
    for engine in (knockout_naive, knockout_shared):
        out = engine(adapter, batch, EDGES, 0)
        assert np.array_equal(out.first, np.broadcast_to(out.base_first, out.first.shape))
        assert np.array_equal(out.answer, np.broadcast_to(out.base_answer, out.answer.shape))
        assert not out.first_change().any() and not out.answer_change().any()


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_image_knocked_out_everywhere_is_k0_truncation_at_the_last_position(
    case: Case, attn: str
) -> None:
    adapter, batch = case.adapters[attn], case.batch(attn)
    edges = ["image->last", "image->instruction"]
    with blocking(adapter, batch, edges, range(adapter.num_layers)):
        knocked = _logits(adapter, batch)
    with truncate(adapter, 0, batch):
        truncated = _logits(adapter, batch)
    plain = _logits(adapter, batch)
    last = [g.last_prompt_position for g in batch.groups]
    rows = torch.arange(len(batch))
    # truncation's logits come out for the kept (text) positions only, the last prompt
    # position at its original offset from the end
    kept_last = [p - batch.seq_len for p in last]
    torch.testing.assert_close(knocked[rows, last], truncated[rows, kept_last], atol=ATOL, rtol=0)
    assert (plain[rows, last] - knocked[rows, last]).abs().max() > 1e-3


@pytest.mark.parametrize("edge", ["image->last", "image->instruction"])
def test_blocking_acts_on_the_target_queries_only(case: Case, edge: str) -> None:
    """Everything before the first target query is untouched; the targets are not."""
    adapter, batch = case.adapters["sdpa"], case.batch("sdpa")
    target = group_masks(batch)[Edge(*edge.split("->")).target]
    with blocking(adapter, batch, [edge], range(adapter.num_layers)):
        knocked = _logits(adapter, batch)
    plain = _logits(adapter, batch)
    valid = batch.attention_mask.bool()
    for row in range(len(batch)):
        first = int(target[row].nonzero()[0])
        before = valid[row].clone()
        before[first:] = False
        torch.testing.assert_close(knocked[row, before], plain[row, before], atol=1e-6, rtol=0)
        moved = (knocked[row, target[row]] - plain[row, target[row]]).abs().max()
        assert moved > 1e-3, f"row {row}: blocking {edge} left its target queries unchanged"


def test_eager_equals_sdpa(case: Case) -> None:
    outs = [knockout_shared(case.adapters[a], case.batch(a), EDGES, 2) for a in ("sdpa", "eager")]
    _close(*outs)


def test_a_batch_equals_its_rows_one_at_a_time(case: Case) -> None:
    adapter = case.adapters["sdpa"]
    together = knockout_shared(adapter, case.batch("sdpa"), EDGES, 2)
    for row in range(len(PROMPTS)):
        alone = knockout_shared(adapter, case.batch("sdpa", slice(row, row + 1)), EDGES, 2)
        for name in ("first", "answer"):
            np.testing.assert_allclose(
                getattr(together, name)[..., row], getattr(alone, name)[..., 0], atol=ATOL, rtol=0
            )
        for name in ("base_first", "base_answer"):
            np.testing.assert_allclose(
                getattr(together, name)[row], getattr(alone, name)[0], atol=ATOL, rtol=0
            )


def test_groups_single_out_the_last_prompt_position(case: Case) -> None:
    batch = case.batch("sdpa")
    groups = group_masks(batch)
    stacked = torch.stack([groups[name] for name in ("system", "image", "instruction", "last")])
    assert int(stacked.sum(0).max()) == 1  # disjoint
    for row, g in enumerate(batch.groups):
        assert groups["last"][row].nonzero().squeeze(1).tolist() == [g.last_prompt_position]
        prompt = torch.zeros(batch.seq_len, dtype=torch.bool)
        prompt[list(g.prompt)] = True
        assert torch.equal(stacked[:, row].any(0).cpu(), prompt)  # the prompt, nothing else
        assert groups["image"][row].nonzero().squeeze(1).tolist() == list(g.image)


def test_scores_and_changes_read_the_teacher_forced_answer(case: Case) -> None:
    """The baseline's first-token log-prob is read where the model predicts the first answer
    token, the whole answer's as the sum over its tokens; changes are (p - p0) / p0."""
    adapter, batch = case.adapters["sdpa"], case.batch("sdpa")
    out = knockout_shared(adapter, batch, ["image->last"], 1)
    logp = torch.log_softmax(_logits(adapter, batch), dim=-1)
    for row, g in enumerate(batch.groups):
        ids = batch.input_ids[row]
        per_token = [float(logp[row, p - 1, ids[p]]) for p in g.output]
        assert out.base_first[row] == pytest.approx(per_token[0], abs=ATOL)
        assert out.base_answer[row] == pytest.approx(sum(per_token), abs=ATOL)
    p, p0 = np.exp(out.first), np.exp(out.base_first)
    np.testing.assert_allclose(out.first_change(), (p - p0) / p0, rtol=1e-9, atol=1e-12)
    q, q0 = np.exp(out.answer), np.exp(out.base_answer)
    np.testing.assert_allclose(out.answer_change(), (q - q0) / q0, rtol=1e-9, atol=1e-12)
    last = adapter.num_layers - 1
    assert out.layers(last) == range(last, last + 1)
    first, answer = out.at("image->last", last)
    assert np.array_equal(first, out.first[0, -1]) and np.array_equal(answer, out.answer[0, -1])


def test_rows_without_an_answer_score_nan(case: Case) -> None:
    adapter = case.adapters["sdpa"]
    mixed = adapter.build_batch(images(), PROMPTS, answers=[[], case.answers[1]])
    out = knockout_shared(adapter, mixed, EDGES, 2)
    naive = knockout_naive(adapter, mixed, EDGES, 2)
    _close(out, naive)
    alone = knockout_shared(adapter, case.batch("sdpa", slice(1, 2)), EDGES, 2)
    for name in ("first", "answer"):
        assert np.isnan(getattr(out, name)[..., 0]).all()
        np.testing.assert_allclose(
            getattr(out, name)[..., 1], getattr(alone, name)[..., 0], atol=ATOL
        )
    nothing = adapter.build_batch(images(), PROMPTS, answers=[[], []])
    for engine in (knockout_naive, knockout_shared):
        assert np.isnan(engine(adapter, nothing, EDGES, 2).first).all()


def test_bad_requests_are_refused(case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    adapter = case.adapters["sdpa"]
    with pytest.raises(CliffscopeError, match="teacher-forced"):
        knockout_shared(adapter, adapter.build_batch(images(), PROMPTS), EDGES, 1)
    batch = case.batch("sdpa")
    with pytest.raises(CliffscopeError, match="outside"):
        knockout_naive(adapter, batch, EDGES, 1, [adapter.num_layers])
    with pytest.raises(CliffscopeError, match="window"):
        knockout_shared(adapter, batch, EDGES, -1)
    monkeypatch.setattr(adapter, "text_attention", lambda: "flash_attention_2")
    for engine in (knockout_naive, knockout_shared):
        with pytest.raises(CliffscopeError, match="flash_attention_2"):
            engine(adapter, batch, EDGES, 1)

"""VQA accuracy: the official normalisation and the leave-one-out average, by hand."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cliffscope.metrics.vqa import VQAAccuracy, normalize_vqa_answer, vqa_accuracy


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Two", "2"),  # number word -> digit, lowercased
        ("None", "0"),
        ("the dog.", "dog"),  # article dropped, trailing period stripped
        ("An Apple", "apple"),
        ("isnt", "isn't"),  # contraction table
        ("dont", "don't"),
        ("1,000", "1000"),  # digit-comma-digit: every punctuation mark is deleted
        ("1,000 hot-dogs", "1000 hotdogs"),  # ...including the hyphen elsewhere
        ("hot-dog", "hot dog"),  # no digit comma, no adjacent space: replaced by a space
        ("yes, it is", "yes it is"),  # comma before a space: deleted
        ("red/white", "red white"),
        ("3.5", "3.5"),  # a period followed by a digit survives
        ("  Dog!\n", "dog"),
        ("(b) cat", "b cat"),  # parentheses touch no space -> replaced by spaces
    ],
)
def test_official_normalisation(raw: str, expected: str) -> None:
    assert normalize_vqa_answer(raw) == expected


def _refs(n_match: int, n: int = 10) -> list[str]:
    return ["dog"] * n_match + ["cat"] * (n - n_match)


@pytest.mark.parametrize(
    ("n_match", "expected"),
    [
        (0, 0.0),
        # 1 match: leaving it out leaves 0 (1 subset), otherwise 1 -> 1/3 (9 subsets)
        (1, 9 * (1 / 3) / 10),
        # 2 matches: (2 * 1/3 + 8 * 2/3) / 10
        (2, 0.6),
        # 3 matches: (3 * 2/3 + 7 * 1) / 10
        (3, 0.9),
        # 4 matches: every subset of 9 still holds >= 3 matches
        (4, 1.0),
        (10, 1.0),
    ],
)
def test_leave_one_out_over_ten_answers(n_match: int, expected: float) -> None:
    assert vqa_accuracy("dog", _refs(n_match)) == pytest.approx(expected, abs=1e-12)


def test_prediction_and_answers_are_normalised_before_matching() -> None:
    refs = ["2"] * 2 + ["two"] + ["3"] * 7  # three answers normalise to "2"
    assert vqa_accuracy("Two.", refs) == pytest.approx(0.9)


def test_normalises_even_when_all_answers_agree() -> None:
    # vqaEval.py would compare "two." with "2" raw here and score 0; we always normalise.
    assert vqa_accuracy("Two.", ["2"] * 10) == 1.0


def test_single_reference_is_exact_match_after_normalisation() -> None:
    assert vqa_accuracy("The dog.", ["dog"]) == 1.0
    assert vqa_accuracy("cat", ["dog"]) == 0.0


def test_order_of_answers_does_not_matter() -> None:
    refs = ["dog", "cat", "dog", "cat", "cat", "cat", "bird", "cat", "cat", "cat"]
    assert vqa_accuracy("dog", refs) == vqa_accuracy("dog", sorted(refs)) == pytest.approx(0.6)


def _official_loop(pred: str, refs: list[str]) -> float:
    """The loop of vqaEval.py on already normalised strings, written out literally."""
    accs = []
    for i in range(len(refs)):
        others = [r for j, r in enumerate(refs) if j != i]
        accs.append(min(1.0, sum(r == pred for r in others) / 3))
    return sum(accs) / len(accs)


@given(
    pred=st.sampled_from(["a1", "b2", "c3"]),
    refs=st.lists(st.sampled_from(["a1", "b2", "c3"]), min_size=2, max_size=12),
)
def test_matches_the_official_loop(pred: str, refs: list[str]) -> None:
    assert vqa_accuracy(pred, refs) == pytest.approx(_official_loop(pred, refs))


def test_metric_corpus_is_mean_of_samples() -> None:
    result = VQAAccuracy().score_batch(["dog", "dog", "fish"], [_refs(2), _refs(3), _refs(10)])
    assert result.per_sample == pytest.approx([0.6, 0.9, 0.0])
    assert result.corpus == pytest.approx(0.5)

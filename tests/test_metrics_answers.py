"""Short-answer metrics: exact match, yes/no, multiple choice, relaxed accuracy, ANLS."""

from __future__ import annotations

import pytest

from cliffscope.metrics.anls import anls, normalized_levenshtein
from cliffscope.metrics.choice import choice_accuracy, parse_choice
from cliffscope.metrics.exact import exact_match, yes_no_accuracy
from cliffscope.metrics.relaxed import parse_number, relaxed_accuracy

# --- exact match and yes/no -------------------------------------------------------------


def test_exact_match_ignores_case_and_edge_punctuation_only() -> None:
    assert exact_match("Red.", ["blue", "red"]) == 1.0
    assert exact_match("  RED  car ", ["red car"]) == 1.0
    assert exact_match("red car", ["red"]) == 0.0


@pytest.mark.parametrize(
    ("prediction", "reference", "expected"),
    [
        ("Yes, there is a dog.", "yes", 1.0),
        ("No.", "no", 1.0),
        ("No.", "yes", 0.0),
        ("yes", "Yes", 1.0),
        ("Nope", "no", 0.0),  # "no" must be a whole word
        ("There is no dog.", "no", 0.0),  # does not start with yes/no -> unparsed -> wrong
    ],
)
def test_yes_no(prediction: str, reference: str, expected: float) -> None:
    assert yes_no_accuracy(prediction, [reference]) == expected


# --- multiple choice -------------------------------------------------------------------

CHOICES = ["cat", "dog", "bird", "fish"]


@pytest.mark.parametrize(
    "prediction",
    [
        "B",
        "(B)",
        "B.",
        "b",
        "B:",
        "Answer: B",
        "The answer is (B).",
        "B. dog",
        "(B) dog",
        "dog",
        "Dog.",
    ],
)
def test_choice_forms_that_name_option_b(prediction: str) -> None:
    assert parse_choice(prediction, CHOICES) == 1
    assert choice_accuracy(prediction, ["B"], CHOICES) == 1.0
    assert choice_accuracy(prediction, ["dog"], CHOICES) == 1.0  # reference as option text


@pytest.mark.parametrize(
    "prediction",
    [
        "E",  # out of range for four options
        "B or C",
        "The answer is a dog",  # lowercase "a" is an article, not option A
        "a cat and a dog",
        "",
    ],
)
def test_choice_forms_that_name_no_single_option(prediction: str) -> None:
    assert parse_choice(prediction, CHOICES) is None
    assert choice_accuracy(prediction, ["A"], CHOICES) == 0.0


def test_choice_letter_wins_over_contradicting_text() -> None:
    assert choice_accuracy("B. cat", ["A"], CHOICES) == 0.0
    assert choice_accuracy("B. cat", ["B"], CHOICES) == 1.0


def test_choice_wrong_option() -> None:
    assert choice_accuracy("C", ["B"], CHOICES) == 0.0
    assert choice_accuracy("bird", ["dog"], CHOICES) == 0.0


def test_choice_without_options() -> None:
    assert choice_accuracy("Answer: C", ["C"]) == 1.0
    assert choice_accuracy("cat", ["cat"]) == 1.0
    assert choice_accuracy("cat", ["B"]) == 0.0


# --- ChartQA relaxed accuracy ------------------------------------------------------------


@pytest.mark.parametrize(
    ("prediction", "reference", "expected"),
    [
        ("45%", "47", 1.0),  # |45 - 47| / 47 = 0.0426 <= 0.05
        ("47", "45%", 1.0),  # |47 - 45| / 45 = 0.0444
        ("44%", "47", 0.0),  # 3 / 47 = 0.0638
        ("45%", "0.45", 1.0),  # the divided reading matches
        ("45 %", "45%", 1.0),
        ("1,234", "1200", 1.0),  # 34 / 1200 = 0.028
        ("1,300", "1200", 0.0),  # 100 / 1200 = 0.083
        ("105", "100", 1.0),  # exactly 5% is allowed
        ("105.1", "100", 0.0),
        ("-95", "-100", 1.0),
        ("95", "-100", 0.0),
        ("0.0", "0", 1.0),
        ("0.01", "0", 0.0),
        ("Yes", "yes", 1.0),  # text: case-insensitive exact
        ("yes ", "yes", 1.0),
        ("yes.", "yes", 0.0),
        ("nan", "nan", 1.0),  # not a number for us: string equality
        ("12 apples", "12", 0.0),
    ],
)
def test_relaxed_accuracy(prediction: str, reference: str, expected: float) -> None:
    assert relaxed_accuracy(prediction, [reference]) == expected


def test_relaxed_takes_the_best_reference() -> None:
    assert relaxed_accuracy("10", ["100", "10.4"]) == 1.0
    assert relaxed_accuracy("10", ["100", "11"]) == 0.0


def test_parse_number_readings() -> None:
    assert parse_number("12%") == [12.0, 0.12]
    assert parse_number("1,234.5") == [1234.5]
    assert parse_number("12,34") == []  # not a thousands pattern
    assert parse_number("inf") == []


# --- ANLS --------------------------------------------------------------------------------


def test_anls_threshold_edge() -> None:
    # 2 substitutions / 4 chars: NL = 0.5 exactly, which is not below tau -> 0
    assert normalized_levenshtein("abcd", "abxy") == 0.5
    assert anls("abcd", ["abxy"]) == 0.0
    # 5 / 10 is also exactly 0.5
    assert anls("abcdefghij", ["abcdevwxyz"]) == 0.0
    # 4 / 9 < 0.5 -> 1 - 4/9
    assert anls("abcdefghi", ["abcdewxyz"]) == pytest.approx(5 / 9)


def test_anls_values() -> None:
    assert anls("abcd", ["abcx"]) == pytest.approx(0.75)
    assert anls("abcd", ["zzzz", "abcx", "abcdx"]) == pytest.approx(0.8)  # best reference: 1/5
    assert anls("  ABC   d ", ["abc d"]) == 1.0  # lowercase + whitespace collapse
    assert anls("", [""]) == 1.0
    assert anls("", ["a"]) == 0.0

"""Multiple-choice accuracy: the model may answer with a letter or with the option's text.

Options are lettered A, B, C, ... in the order given by `choices`. A prediction is read, in this
order, as: a bare letter ("B", "(B)", "b.", "B:"), a leading letter marker ("B. cat",
"(B) cat"), a letter after "answer/option/choice [is]" ("Answer: B", "The answer is (B)."), or
the full text of exactly one option ("cat"). When a letter marker and the text disagree
("B. dog" where B is "cat") the letter wins, as the prompt asked for a letter. References may
hold the correct letter or the correct option's text.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

from cliffscope.metrics.base import PerSampleMetric
from cliffscope.metrics.exact import normalize_text

_BARE = re.compile(r"\(?([A-Za-z])\)?[.:)]?")
_LEADING = re.compile(r"\(?([A-Z])[).:]\s+\S")
_PREFIXED = re.compile(
    r"\b(?i:answer|option|choice)\b(?:\s+(?i:is))?\s*[:\-]?\s*\(?([A-Z])(?![A-Za-z])"
)


def _letter_index(letter: str, n_options: int) -> int | None:
    idx = string.ascii_uppercase.index(letter.upper())
    return idx if idx < n_options else None


def parse_choice(prediction: str, choices: Sequence[str] | None = None) -> int | None:
    """Index of the option a prediction names, or None when it names none (or a letter out of
    range). Without `choices` any letter A-Z is accepted and text cannot be resolved."""
    text = prediction.strip()
    n = len(choices) if choices is not None else 26
    m = _BARE.fullmatch(text) or _LEADING.match(text) or _PREFIXED.search(text)
    if m:
        return _letter_index(m.group(1), n)
    if choices is None:
        return None
    wanted = normalize_text(text)
    hits = [i for i, c in enumerate(choices) if normalize_text(c) == wanted]
    return hits[0] if len(hits) == 1 else None


def _reference_index(reference: str, choices: Sequence[str] | None) -> int | None:
    """A reference is a letter ("B", "(B)") or, with choices, an option's text."""
    n = len(choices) if choices is not None else 26
    m = _BARE.fullmatch(reference.strip())
    if m:
        return _letter_index(m.group(1), n)
    if choices is None:
        return None
    wanted = normalize_text(reference)
    hits = [i for i, c in enumerate(choices) if normalize_text(c) == wanted]
    return hits[0] if hits else None


def choice_accuracy(
    prediction: str, references: Sequence[str], choices: Sequence[str] | None = None
) -> float:
    """1.0 when the prediction picks the option any reference names."""
    picked = parse_choice(prediction, choices)
    for ref in references:
        gold = _reference_index(ref, choices)
        if gold is not None:
            if picked == gold:
                return 1.0
        elif choices is None and normalize_text(prediction) == normalize_text(ref):
            return 1.0  # no options given and a free-text reference: plain text match
    return 0.0


class ChoiceAccuracy(PerSampleMetric):
    name = "choice_accuracy"
    description = "multiple-choice accuracy: answer by letter (A/B/...) or by option text"
    higher_is_better = True

    def _score(
        self, prediction: str, references: list[str], choices: Sequence[str] | None
    ) -> float:
        return choice_accuracy(prediction, references, choices)

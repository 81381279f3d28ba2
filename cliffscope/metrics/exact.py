"""String-equality metrics: exact match and yes/no accuracy (POPE).

Both compare lightly normalised strings so that "Red." and "red" agree; neither tries to
understand paraphrases, which keeps them predictable across truncation settings.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from cliffscope.metrics.base import PerSampleMetric

_EDGE_PUNCT = " \t\n.,;:!?'\"`()[]{}"


def normalize_text(text: str) -> str:
    """Lowercase, collapse whitespace and strip punctuation from both ends ("Red." -> "red")."""
    return " ".join(text.lower().split()).strip(_EDGE_PUNCT)


def exact_match(prediction: str, references: Sequence[str]) -> float:
    """1.0 when the normalised prediction equals any normalised reference."""
    pred = normalize_text(prediction)
    return float(any(pred == normalize_text(r) for r in references))


_YES_NO = re.compile(r"^\W*(yes|no)\b", re.IGNORECASE)


def parse_yes_no(text: str) -> str | None:
    """ "yes"/"no" when the answer starts with that word ("Yes, there is a dog." -> "yes").

    Answers that do not start with yes or no ("There is no dog") give None and count as wrong:
    guessing from negation words inside a sentence would silently reward hedging outputs.
    """
    m = _YES_NO.match(text.strip())
    return m.group(1).lower() if m else None


def yes_no_accuracy(prediction: str, references: Sequence[str]) -> float:
    """1.0 when the prediction's leading yes/no equals any reference's."""
    pred = parse_yes_no(prediction)
    if pred is None:
        return 0.0
    return float(any(parse_yes_no(r) == pred for r in references))


class ExactMatch(PerSampleMetric):
    name = "exact_match"
    description = "exact match after lowercasing and trimming edge punctuation"
    higher_is_better = True

    def _score(
        self, prediction: str, references: list[str], choices: Sequence[str] | None
    ) -> float:
        return exact_match(prediction, references)


class YesNoAccuracy(PerSampleMetric):
    name = "yes_no_accuracy"
    description = "yes/no accuracy (POPE): the answer's leading yes or no must match"
    higher_is_better = True

    def _score(
        self, prediction: str, references: list[str], choices: Sequence[str] | None
    ) -> float:
        return yes_no_accuracy(prediction, references)

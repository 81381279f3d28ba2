"""ChartQA relaxed accuracy: numbers may be off by 5% of the reference, text must match exactly.

Follows the pix2struct/ChartQA `relaxed_correctness` rule (relative change <= 5%, else
case-insensitive string equality), with three differences that only make it read numbers the
way a person would:

- thousands separators are accepted ("1,234" is 1234);
- a percentage is read both as written and divided by 100, and either reading may match:
  the official code only divides ("45%" becomes 0.45 and so misses a reference "45", the
  usual ChartQA label for a value shown in percent), while "45%" against "0.45" still matches;
- a reference of 0 needs exactly 0 (the official code falls back to string equality there,
  so "0.0" misses "0").
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from cliffscope.metrics.base import PerSampleMetric

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_THOUSANDS = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d*)?")


def parse_number(text: str) -> list[float]:
    """The numeric readings of an answer: [] for text, [x] for a number, [x, x/100] for "x%"."""
    s = text.strip()
    percent = s.endswith("%")
    if percent:
        s = s[:-1].rstrip()
    if _THOUSANDS.fullmatch(s):
        s = s.replace(",", "")
    if not _NUMBER.fullmatch(s):
        return []
    value = float(s)
    return [value, value / 100.0] if percent else [value]


def relaxed_match(prediction: str, reference: str, tolerance: float = 0.05) -> bool:
    """True when the numbers agree within `tolerance` relative to the reference, or the
    strings agree ignoring case."""
    preds, refs = parse_number(prediction), parse_number(reference)
    if preds and refs:
        for t in refs:
            for p in preds:
                if (t == 0 and p == 0) or (t != 0 and abs(p - t) / abs(t) <= tolerance):
                    return True
        return False
    return prediction.strip().lower() == reference.strip().lower()


def relaxed_accuracy(prediction: str, references: Sequence[str], tolerance: float = 0.05) -> float:
    """1.0 when the prediction relaxed-matches any reference."""
    return float(any(relaxed_match(prediction, r, tolerance) for r in references))


class RelaxedAccuracy(PerSampleMetric):
    name = "relaxed_accuracy"
    description = "ChartQA relaxed accuracy: numbers within 5%, text exact (case-insensitive)"
    higher_is_better = True
    tolerance = 0.05

    def _score(
        self, prediction: str, references: list[str], choices: Sequence[str] | None
    ) -> float:
        return relaxed_accuracy(prediction, references, self.tolerance)

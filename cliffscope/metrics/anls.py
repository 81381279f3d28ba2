"""ANLS (average normalised Levenshtein similarity), the DocVQA / InfographicVQA metric.

For each reference: NL = edit distance / max(len(prediction), len(reference)) after lowercasing
and collapsing whitespace; the similarity is 1 - NL when NL < tau (0.5) and 0 otherwise, so
answers that are more wrong than right earn nothing. The sample score is the best reference.
"""

from __future__ import annotations

from collections.abc import Sequence

from cliffscope.metrics.base import PerSampleMetric

TAU = 0.5


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def normalized_levenshtein(a: str, b: str) -> float:
    """Edit distance divided by the longer length (0.0 for two empty strings)."""
    import Levenshtein  # lazy: a C extension the domain core should not load at import time

    longest = max(len(a), len(b))
    return Levenshtein.distance(a, b) / longest if longest else 0.0


def anls(prediction: str, references: Sequence[str], tau: float = TAU) -> float:
    """Best thresholded similarity of the prediction to any reference."""
    pred = _norm(prediction)
    best = 0.0
    for ref in references:
        nl = normalized_levenshtein(pred, _norm(ref))
        if nl < tau:
            best = max(best, 1.0 - nl)
    return best


class ANLS(PerSampleMetric):
    name = "anls"
    description = "ANLS (DocVQA): 1 - normalised edit distance, 0 when it reaches tau=0.5"
    higher_is_better = True
    tau = TAU

    def _score(
        self, prediction: str, references: list[str], choices: Sequence[str] | None
    ) -> float:
        return anls(prediction, references, self.tau)

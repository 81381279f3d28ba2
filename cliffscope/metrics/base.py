"""What every metric looks like to the rest of cliffscope.

A metric scores model predictions against reference answers. Most metrics score each sample on
its own, so the corpus score is the mean of the per-sample scores and a bootstrap over samples
is cheap. Caption metrics (CIDEr-D, BLEU) are *corpus-level*: CIDEr's idf weights and BLEU's
brevity penalty depend on the whole set, so they only offer `score_batch` and say so with
`corpus_level = True`; callers then resample whole corpora (`bootstrap_corpus`).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from cliffscope.errors import CliffscopeError


@dataclass(frozen=True)
class MetricResult:
    """Scores of one batch: one float per sample plus the score of the whole set.

    For per-sample metrics `corpus` is the mean of `per_sample`; for corpus-level metrics it is
    the metric's own corpus score (e.g. corpus BLEU, which is not the mean of sentence BLEU).
    An empty batch has `corpus = nan`.
    """

    per_sample: list[float]
    corpus: float


class Metric(ABC):
    """A named scoring rule that declares which direction is better."""

    name: ClassVar[str]
    description: ClassVar[str]
    higher_is_better: ClassVar[bool] = True
    corpus_level: ClassVar[bool] = False

    @abstractmethod
    def score_batch(
        self,
        predictions: Sequence[str],
        references: Sequence[Sequence[str]],
        choices: Sequence[Sequence[str]] | None = None,
    ) -> MetricResult:
        """Score a whole set; `references[i]` (and `choices[i]`) belong to `predictions[i]`."""

    def score_one(
        self,
        prediction: str,
        references: Sequence[str],
        choices: Sequence[str] | None = None,
    ) -> float:
        """Score one prediction against its references (per-sample metrics only)."""
        raise CliffscopeError(
            f"metric '{self.name}' is corpus-level and cannot score one sample alone",
            hint="call score_batch() on the whole set of predictions",
        )

    def __repr__(self) -> str:
        return f"<metric {self.name} higher_is_better={self.higher_is_better}>"


class PerSampleMetric(Metric):
    """A metric whose corpus score is the mean of independent per-sample scores."""

    corpus_level: ClassVar[bool] = False

    @abstractmethod
    def _score(
        self, prediction: str, references: list[str], choices: Sequence[str] | None
    ) -> float:
        """Score one sample; `references` is non-empty."""

    def score_one(
        self,
        prediction: str,
        references: Sequence[str],
        choices: Sequence[str] | None = None,
    ) -> float:
        _check_references(self.name, references, 0)
        return float(self._score(prediction, list(references), choices))

    def score_batch(
        self,
        predictions: Sequence[str],
        references: Sequence[Sequence[str]],
        choices: Sequence[Sequence[str]] | None = None,
    ) -> MetricResult:
        check_batch(self.name, predictions, references, choices)
        if not predictions:
            return MetricResult(per_sample=[], corpus=math.nan)
        per = [
            float(self._score(p, list(r), None if choices is None else choices[i]))
            for i, (p, r) in enumerate(zip(predictions, references, strict=True))
        ]
        return MetricResult(per_sample=per, corpus=math.fsum(per) / len(per))


def check_batch(
    name: str,
    predictions: Sequence[str],
    references: Sequence[Sequence[str]],
    choices: Sequence[Sequence[str]] | None,
) -> None:
    """Fail with a readable error when the parallel lists do not line up."""
    if len(predictions) != len(references):
        raise CliffscopeError(
            f"metric '{name}': {len(predictions)} predictions but {len(references)} reference lists",
            hint="pass one list of reference answers per prediction",
        )
    if choices is not None and len(choices) != len(predictions):
        raise CliffscopeError(
            f"metric '{name}': {len(predictions)} predictions but {len(choices)} choice lists",
            hint="pass one list of options per prediction, or none at all",
        )
    for i, refs in enumerate(references):
        _check_references(name, refs, i)


def _check_references(name: str, references: Sequence[str], index: int) -> None:
    if isinstance(references, str):
        raise CliffscopeError(
            f"metric '{name}': references of sample {index} are a string, not a list",
            hint=f"wrap it in a list: [{references!r}]",
        )
    if len(references) == 0:
        raise CliffscopeError(
            f"metric '{name}': sample {index} has no reference answers",
            hint="every scored sample needs at least one reference; check the task's answer field",
        )

"""Caption metrics: CIDEr-D, BLEU-1..4 and ROUGE-L from pycocoevalcap's pure-Python scorers.

pycocoevalcap's `Cider` is the CIDEr-D variant the COCO server reports (clipped n-gram counts,
Gaussian length penalty sigma=6, x10). Its `PTBTokenizer` shells out to Java, which GPU nodes
often lack, so captions are tokenised here by `tokenize_caption`, a pure-Python approximation:
lowercase, split off "n't" and "'s"-style clitics, keep hyphenated words and decimals whole, and
drop the punctuation tokens the PTB wrapper removes (plus brackets, which PTB turns into -LRB-
etc. and also removes). It differs from Stanford PTB on rarer cases (abbreviations such as
"u.s." lose their final period, "[" is removed rather than kept as -LSB-), so absolute scores
can differ slightly from the COCO server's; comparisons inside cliffscope are unaffected.

CIDEr-D and BLEU are corpus-level: idf weights (CIDEr) and the brevity penalty (corpus BLEU)
depend on the whole set. Note that CIDEr-D of a one-image corpus is always 0 (idf = log 1 = 0).
pycocoevalcap is imported inside functions so importing cliffscope stays cheap.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import ClassVar

from cliffscope.metrics.base import Metric, MetricResult, PerSampleMetric, check_batch

# The PTB wrapper's removal list (pycocoevalcap/tokenizer/ptbtokenizer.py) plus raw brackets
# and double quotes, which Stanford PTB first rewrites into tokens that list also removes.
_REMOVED = frozenset(
    ["''", "'", "``", "`", ".", "?", "!", ",", ":", "-", "--", "...", ";"]
    + ["(", ")", "{", "}", '"']
)
_NT = re.compile(r"(\w)(n't)\b")
_CLITIC = re.compile(r"(\w)('(?:s|re|ve|ll|d|m))\b")
_TOKEN = re.compile(r"n't|'(?:s|re|ve|ll|d|m)\b|\w+(?:[-.'/]\w+)*|\S")


def tokenize_caption(text: str) -> str:
    """PTB-like tokens joined by single spaces ("A dog's toy." -> "a dog 's toy")."""
    text = text.replace("\n", " ").lower()
    text = _CLITIC.sub(r"\1 \2", _NT.sub(r"\1 \2", text))
    return " ".join(t for t in _TOKEN.findall(text) if t not in _REMOVED)


def _coco_dicts(
    predictions: Sequence[str], references: Sequence[Sequence[str]]
) -> tuple[dict[int, list[str]], dict[int, list[str]]]:
    """pycocoevalcap's (gts, res) dicts, keyed by position so duplicate samples stay apart."""
    gts = {i: [tokenize_caption(r) for r in refs] for i, refs in enumerate(references)}
    res = {i: [tokenize_caption(p)] for i, p in enumerate(predictions)}
    return gts, res


class CIDErD(Metric):
    name = "cider"
    description = "CIDEr-D (pycocoevalcap, x10 scale), corpus-level idf"
    higher_is_better = True
    corpus_level = True

    def score_batch(
        self,
        predictions: Sequence[str],
        references: Sequence[Sequence[str]],
        choices: Sequence[Sequence[str]] | None = None,
    ) -> MetricResult:
        check_batch(self.name, predictions, references, choices)
        if not predictions:
            return MetricResult(per_sample=[], corpus=math.nan)
        from pycocoevalcap.cider.cider import Cider

        gts, res = _coco_dicts(predictions, references)
        corpus, per = Cider().compute_score(gts, res)
        return MetricResult(per_sample=[float(s) for s in per], corpus=float(corpus))


class _BleuN(Metric):
    """Corpus BLEU-n (closest reference length) with sentence BLEU-n per sample."""

    order: ClassVar[int]
    higher_is_better = True
    corpus_level = True

    def score_batch(
        self,
        predictions: Sequence[str],
        references: Sequence[Sequence[str]],
        choices: Sequence[Sequence[str]] | None = None,
    ) -> MetricResult:
        check_batch(self.name, predictions, references, choices)
        if not predictions:
            return MetricResult(per_sample=[], corpus=math.nan)
        from pycocoevalcap.bleu.bleu import Bleu

        gts, res = _coco_dicts(predictions, references)
        corpus, per = Bleu(self.order).compute_score(gts, res, verbose=0)
        k = self.order - 1
        return MetricResult(per_sample=[float(s) for s in per[k]], corpus=float(corpus[k]))


class Bleu1(_BleuN):
    name = "bleu1"
    description = "BLEU-1 (pycocoevalcap), corpus-level brevity penalty"
    order = 1


class Bleu2(_BleuN):
    name = "bleu2"
    description = "BLEU-2 (pycocoevalcap), corpus-level brevity penalty"
    order = 2


class Bleu3(_BleuN):
    name = "bleu3"
    description = "BLEU-3 (pycocoevalcap), corpus-level brevity penalty"
    order = 3


class Bleu4(_BleuN):
    name = "bleu4"
    description = "BLEU-4 (pycocoevalcap), corpus-level brevity penalty"
    order = 4


class RougeL(PerSampleMetric):
    name = "rouge_l"
    description = (
        "ROUGE-L F (pycocoevalcap, beta=1.2) from max LCS precision and recall over references"
    )
    higher_is_better = True

    def _score(
        self, prediction: str, references: list[str], choices: Sequence[str] | None
    ) -> float:
        from pycocoevalcap.rouge.rouge import Rouge

        refs = [tokenize_caption(r) for r in references]
        return float(Rouge().calc_score([tokenize_caption(prediction)], refs))

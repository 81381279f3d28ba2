"""VQA accuracy as scored by the official VQAv2 evaluation (GT-Vision-Lab/VQA, vqaEval.py).

The normalisation is a faithful port of `processPunctuation` and `processDigitArticle`,
including their quirks, because published VQAv2/TextVQA numbers depend on them:

- punctuation is deleted when it touches a space or when the text holds a digit-comma-digit
  ("1,000" -> "1000"), and replaced by a space otherwise ("a/b" -> "a b");
- the period regex `(?!<=\\d)(\\.)(?!\\d)` is the official one: its "lookbehind" is really a
  lookahead that never matches, so every period not followed by a digit is dropped ("3.5" stays);
- number words zero..ten (and "none") become digits, articles a/an/the are dropped, and the
  official contraction table restores apostrophes ("isnt" -> "isn't").

Two deliberate differences from vqaEval.py, both documented so numbers can be compared:

1. The official code normalises only when the ground-truth answers disagree
   (`len(set(gtAnswers)) > 1`); with ten identical answers "Two." would not match "2". We
   always normalise both sides, as lmms-eval and most VLM harnesses do.
2. With a single reference the official leave-one-out leaves nothing to match and scores 0;
   we fall back to exact match after normalisation (1.0 or 0.0).

Accuracy for n >= 2 references: average over the n leave-one-out subsets of
min(#matches among the other n-1 answers / 3, 1).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from cliffscope.metrics.base import PerSampleMetric

CONTRACTIONS: dict[str, str] = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've",
    "couldnt": "couldn't", "couldn'tve": "couldn't've", "couldnt've": "couldn't've",
    "didnt": "didn't", "doesnt": "doesn't", "dont": "don't", "hadnt": "hadn't",
    "hadnt've": "hadn't've", "hadn'tve": "hadn't've", "hasnt": "hasn't", "havent": "haven't",
    "hed": "he'd", "hed've": "he'd've", "he'dve": "he'd've", "hes": "he's", "howd": "how'd",
    "howll": "how'll", "hows": "how's", "Id've": "I'd've", "I'dve": "I'd've", "Im": "I'm",
    "Ive": "I've", "isnt": "isn't", "itd": "it'd", "itd've": "it'd've", "it'dve": "it'd've",
    "itll": "it'll", "let's": "let's", "maam": "ma'am", "mightnt": "mightn't",
    "mightnt've": "mightn't've", "mightn'tve": "mightn't've", "mightve": "might've",
    "mustnt": "mustn't", "mustve": "must've", "neednt": "needn't", "notve": "not've",
    "oclock": "o'clock", "oughtnt": "oughtn't", "ow's'at": "'ow's'at", "'ows'at": "'ow's'at",
    "'ow'sat": "'ow's'at", "shant": "shan't", "shed've": "she'd've", "she'dve": "she'd've",
    "she's": "she's", "shouldve": "should've", "shouldnt": "shouldn't",
    "shouldnt've": "shouldn't've", "shouldn'tve": "shouldn't've", "somebody'd": "somebodyd",
    "somebodyd've": "somebody'd've", "somebody'dve": "somebody'd've",
    "somebodyll": "somebody'll", "somebodys": "somebody's", "someoned": "someone'd",
    "someoned've": "someone'd've", "someone'dve": "someone'd've", "someonell": "someone'll",
    "someones": "someone's", "somethingd": "something'd", "somethingd've": "something'd've",
    "something'dve": "something'd've", "somethingll": "something'll", "thats": "that's",
    "thered": "there'd", "thered've": "there'd've", "there'dve": "there'd've",
    "therere": "there're", "theres": "there's", "theyd": "they'd", "theyd've": "they'd've",
    "they'dve": "they'd've", "theyll": "they'll", "theyre": "they're", "theyve": "they've",
    "twas": "'twas", "wasnt": "wasn't", "wed've": "we'd've", "we'dve": "we'd've",
    "weve": "we've", "werent": "weren't", "whatll": "what'll", "whatre": "what're",
    "whats": "what's", "whatve": "what've", "whens": "when's", "whered": "where'd",
    "wheres": "where's", "whereve": "where've", "whod": "who'd", "whod've": "who'd've",
    "who'dve": "who'd've", "wholl": "who'll", "whos": "who's", "whove": "who've",
    "whyll": "why'll", "whyre": "why're", "whys": "why's", "wont": "won't",
    "wouldve": "would've", "wouldnt": "wouldn't", "wouldnt've": "wouldn't've",
    "wouldn'tve": "wouldn't've", "yall": "y'all", "yall'll": "y'all'll", "y'allll": "y'all'll",
    "yall'd've": "y'all'd've", "y'alld've": "y'all'd've", "y'all'dve": "y'all'd've",
    "youd": "you'd", "youd've": "you'd've", "you'dve": "you'd've", "youll": "you'll",
    "youre": "you're", "youve": "you've",
}  # fmt: skip

NUMBER_WORDS: dict[str, str] = {
    "none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}  # fmt: skip

ARTICLES = frozenset({"a", "an", "the"})

PUNCTUATION = [
    ";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`",
    ",", "?", "!",
]  # fmt: skip

# Both regexes are copied verbatim from vqaEval.py (see module docstring for the period quirk).
_PERIOD_STRIP = re.compile(r"(?!<=\d)(\.)(?!\d)")
_COMMA_STRIP = re.compile(r"(\d)(\,)(\d)")


def process_punctuation(text: str) -> str:
    """Official `processPunctuation`: delete or space out punctuation, drop stray periods."""
    out = text
    delete_all = _COMMA_STRIP.search(text) is not None
    for p in PUNCTUATION:
        if delete_all or (p + " " in text) or (" " + p in text):
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    return _PERIOD_STRIP.sub("", out)


def process_digit_article(text: str) -> str:
    """Official `processDigitArticle`: lowercase, number words to digits, drop articles,
    restore contractions."""
    words = [NUMBER_WORDS.get(w, w) for w in text.lower().split()]
    words = [w for w in words if w not in ARTICLES]
    return " ".join(CONTRACTIONS.get(w, w) for w in words)


def normalize_vqa_answer(text: str) -> str:
    """Full official normalisation of one answer (whitespace, punctuation, digits, articles)."""
    text = text.replace("\n", " ").replace("\t", " ").strip()
    return process_digit_article(process_punctuation(text))


def vqa_accuracy(prediction: str, references: Sequence[str]) -> float:
    """VQA accuracy of one prediction against its ground-truth answers (usually 10)."""
    pred = normalize_vqa_answer(prediction)
    refs = [normalize_vqa_answer(r) for r in references]
    if len(refs) < 2:
        return float(bool(refs) and refs[0] == pred)
    hits = [r == pred for r in refs]
    total = sum(hits)
    # Leaving out answer i removes one match exactly when answer i itself matched.
    accs = [min((total - h) / 3.0, 1.0) for h in hits]
    return math.fsum(accs) / len(accs)  # fsum: independent of answer order


class VQAAccuracy(PerSampleMetric):
    name = "vqa_accuracy"
    description = "VQAv2 accuracy: official normalisation, min(matches/3, 1) leave-one-out"
    higher_is_better = True

    def _score(
        self, prediction: str, references: list[str], choices: Sequence[str] | None
    ) -> float:
        return vqa_accuracy(prediction, references)

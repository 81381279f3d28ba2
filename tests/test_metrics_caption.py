"""Caption metrics: tokenisation, CIDEr-D, BLEU and ROUGE-L against hand values and
pycocoevalcap called directly."""

from __future__ import annotations

import math

import pytest
from pycocoevalcap.cider.cider import Cider

from cliffscope.errors import CliffscopeError
from cliffscope.metrics.caption import Bleu1, Bleu2, CIDErD, RougeL, tokenize_caption


@pytest.mark.parametrize(
    ("raw", "tokens"),
    [
        ("A dog's toy.", "a dog 's toy"),
        ("I can't see -- it's dark...", "i ca n't see it 's dark"),
        ("Hello, World!", "hello world"),
        ('A "well-known" city (NYC): 3.5 m', "a well-known city nyc 3.5 m"),
        ("two\nlines", "two lines"),
    ],
)
def test_tokenize_caption(raw: str, tokens: str) -> None:
    assert tokenize_caption(raw) == tokens


# Three images, raw captions with case and punctuation, and the same captions tokenised by hand.
RAW_PREDS = ["A man riding a horse.", "Two dogs play in the snow!", "A plate of food, on a table."]
RAW_REFS = [
    ["A man rides a brown horse.", "Man on a horse in a field.", "A person riding a horse."],
    ["Two dogs playing in snow.", "Dogs run through the snow.", "Two puppies in the snow."],
    ["A plate with food on a wooden table.", "Food on a plate.", "A table with a plate of food."],
]
TOKENISED_PREDS = [
    "a man riding a horse",
    "two dogs play in the snow",
    "a plate of food on a table",
]
TOKENISED_REFS = [
    ["a man rides a brown horse", "man on a horse in a field", "a person riding a horse"],
    ["two dogs playing in snow", "dogs run through the snow", "two puppies in the snow"],
    ["a plate with food on a wooden table", "food on a plate", "a table with a plate of food"],
]


def test_cider_matches_pycocoevalcap_on_pretokenised_captions() -> None:
    gts = {i: refs for i, refs in enumerate(TOKENISED_REFS)}
    res = {i: [p] for i, p in enumerate(TOKENISED_PREDS)}
    want_corpus, want_per = Cider().compute_score(gts, res)

    got = CIDErD().score_batch(RAW_PREDS, RAW_REFS)
    assert got.per_sample == pytest.approx(list(want_per), rel=1e-12)
    assert got.corpus == pytest.approx(float(want_corpus), rel=1e-12)
    assert got.corpus == pytest.approx(sum(got.per_sample) / 3)
    assert all(s > 0 for s in got.per_sample)


def test_cider_hand_computed_two_images() -> None:
    # N = 2 images, so every n-gram seen in exactly one image's references has idf log 2.
    # Image 1: the candidate equals its only reference; cosine 1 for 1- and 2-grams, and there
    # are no 3-/4-grams: mean(1, 1, 0, 0) * 10 = 5.
    # Image 2: "green dog" vs "blue dog": unigram cosine = (log2)^2 / (sqrt2 log2)^2 = 1/2,
    # no shared bigram, equal lengths: mean(0.5, 0, 0, 0) * 10 = 1.25.
    got = CIDErD().score_batch(["red cat", "green dog"], [["red cat"], ["blue dog"]])
    assert got.per_sample == pytest.approx([5.0, 1.25])
    assert got.corpus == pytest.approx(3.125)


def test_cider_perfect_distinct_captions_score_ten() -> None:
    # Candidates identical to every reference, no n-gram shared between images: each n-gram
    # order has cosine 1 and no length penalty, so CIDEr-D is its maximum, 10.
    preds = ["a red car parked outside", "two cats sleep on sofa", "green trees near lake shore"]
    refs = [[p, p] for p in preds]
    got = CIDErD().score_batch(preds, refs)
    assert got.per_sample == pytest.approx([10.0, 10.0, 10.0])


def test_cider_of_a_one_image_corpus_is_zero() -> None:
    # idf = log(1) - log(df = 1) = 0 for every n-gram: a documented degenerate case.
    got = CIDErD().score_batch(["a red car"], [["a red car"]])
    assert got.per_sample == [0.0]


def test_cider_per_sample_follows_input_order() -> None:
    forward = CIDErD().score_batch(RAW_PREDS, RAW_REFS).per_sample
    backward = CIDErD().score_batch(RAW_PREDS[::-1], RAW_REFS[::-1]).per_sample
    assert backward == pytest.approx(forward[::-1])


def test_bleu_hand_computed() -> None:
    preds = ["the cat sat", "a dog runs fast today"]
    refs = [["the cat sat on the mat"], ["a dog runs"]]
    got = Bleu1().score_batch(preds, refs)
    # sample 1: precision 3/3, brevity penalty exp(1 - 6/3); sample 2: 3/5, no penalty
    assert got.per_sample == pytest.approx([math.exp(-1.0), 0.6], rel=1e-6)
    # corpus: 6 of 8 unigrams correct, lengths 8 vs 9 -> 0.75 * exp(1 - 9/8)
    assert got.corpus == pytest.approx(0.75 * math.exp(-1 / 8), rel=1e-6)
    # BLEU-2 of sample 1: both bigrams correct -> sqrt(1 * 1) * exp(-1)
    assert Bleu2().score_batch(preds[:1], refs[:1]).per_sample[0] == pytest.approx(
        math.exp(-1.0), rel=1e-6
    )


def test_rouge_l_hand_computed() -> None:
    # LCS("a b c d", "a c d e f") = 3: P = 3/4, R = 3/5, beta = 1.2
    p, r, b2 = 0.75, 0.6, 1.2**2
    want = (1 + b2) * p * r / (r + b2 * p)
    assert RougeL().score_one("A b c d.", ["a c d e f"]) == pytest.approx(want)
    assert RougeL().score_one("x y", ["a b"]) == 0.0


def test_corpus_level_metrics_refuse_single_samples() -> None:
    assert CIDErD.corpus_level and Bleu1.corpus_level and not RougeL.corpus_level
    with pytest.raises(CliffscopeError, match="corpus-level"):
        CIDErD().score_one("a cat", ["a cat"])


def test_caption_batches_validate_references() -> None:
    with pytest.raises(CliffscopeError, match="no reference"):
        CIDErD().score_batch(["a", "b"], [["a"], []])
    with pytest.raises(CliffscopeError, match="2 predictions but 1"):
        Bleu1().score_batch(["a", "b"], [["a"]])
    assert math.isnan(CIDErD().score_batch([], []).corpus)

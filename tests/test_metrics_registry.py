"""The metric registry, the shared batch contract, and import hygiene."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from cliffscope.errors import CliffscopeError, NotFoundError
from cliffscope.metrics import Metric, get_metric, list_metrics, metric_names

CORPUS_LEVEL = {"cider", "bleu1", "bleu2", "bleu3", "bleu4"}


def test_every_registered_metric_loads_and_names_itself() -> None:
    names = metric_names()
    assert {"vqa_accuracy", "anls", "cider", "bleu4", "rouge_l", "yes_no_accuracy"} <= set(names)
    for name in names:
        metric = get_metric(name)
        assert isinstance(metric, Metric)
        assert metric.name == name
        assert metric.corpus_level == (name in CORPUS_LEVEL)


def test_list_metrics_reports_direction_and_description() -> None:
    rows = list_metrics()
    assert [r[0] for r in rows] == metric_names()
    for _, higher, description in rows:
        assert higher is True  # every metric here is a score, none is an error rate
        assert description


def test_names_are_forgiving_about_case_and_dashes() -> None:
    assert get_metric("VQA-Accuracy").name == "vqa_accuracy"


def test_unknown_metric_lists_known_names() -> None:
    with pytest.raises(NotFoundError) as info:
        get_metric("cider-x")
    assert "cider-x" in info.value.what
    assert "vqa_accuracy" in (info.value.hint or "")


def test_every_metric_scores_a_shared_batch() -> None:
    preds = ["a red cat", "two dogs"]
    refs = [["a red cat"] * 3, ["two dogs", "2 dogs", "dogs"]]
    for name in metric_names():
        result = get_metric(name).score_batch(preds, refs, choices=[["a red cat"], ["two dogs"]])
        assert len(result.per_sample) == 2, name
        assert all(math.isfinite(s) for s in result.per_sample), name
        assert math.isfinite(result.corpus), name


def test_per_sample_metrics_validate_inputs() -> None:
    metric = get_metric("exact_match")
    with pytest.raises(CliffscopeError, match="1 predictions but 2"):
        metric.score_batch(["a"], [["a"], ["b"]])
    with pytest.raises(CliffscopeError, match="choice lists"):
        metric.score_batch(["a"], [["a"]], choices=[])
    with pytest.raises(CliffscopeError, match="not a list"):
        metric.score_one("a", "a")  # type: ignore[arg-type]
    with pytest.raises(CliffscopeError, match="no reference"):
        metric.score_one("a", [])
    empty = metric.score_batch([], [])
    assert empty.per_sample == [] and math.isnan(empty.corpus)


def test_importing_metrics_loads_no_heavy_libraries() -> None:
    code = (
        "import sys, cliffscope.metrics as m\n"
        "assert not {'pycocoevalcap', 'Levenshtein'} & set(sys.modules), 'eager metric deps'\n"
        "for n in m.metric_names(): m.get_metric(n).score_batch(['a b'], [['a b']])\n"
        "bad = {'torch', 'transformers', 'textual'} & set(sys.modules)\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

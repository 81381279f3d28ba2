"""Metric names -> implementations, imported only when asked for.

Like lm-evaluation-harness, the registry maps names to "module:Class" strings, so listing
names costs nothing and a metric's dependencies (pycocoevalcap, Levenshtein) load on first use.
"""

from __future__ import annotations

import importlib

from cliffscope.errors import NotFoundError
from cliffscope.metrics.base import Metric

METRICS: dict[str, str] = {
    "vqa_accuracy": "cliffscope.metrics.vqa:VQAAccuracy",
    "exact_match": "cliffscope.metrics.exact:ExactMatch",
    "yes_no_accuracy": "cliffscope.metrics.exact:YesNoAccuracy",
    "choice_accuracy": "cliffscope.metrics.choice:ChoiceAccuracy",
    "relaxed_accuracy": "cliffscope.metrics.relaxed:RelaxedAccuracy",
    "anls": "cliffscope.metrics.anls:ANLS",
    "cider": "cliffscope.metrics.caption:CIDErD",
    "bleu1": "cliffscope.metrics.caption:Bleu1",
    "bleu2": "cliffscope.metrics.caption:Bleu2",
    "bleu3": "cliffscope.metrics.caption:Bleu3",
    "bleu4": "cliffscope.metrics.caption:Bleu4",
    "rouge_l": "cliffscope.metrics.caption:RougeL",
}


def metric_names() -> list[str]:
    """Every registered metric name, sorted, without importing any of them."""
    return sorted(METRICS)


def _canonical(name: str) -> str:
    """Accept "VQA-Accuracy" for "vqa_accuracy": names are typed by people in task files."""
    return name.strip().lower().replace("-", "_")


def is_metric(name: str) -> bool:
    """Is `name` registered (same spelling rules as `get_metric`)? Imports no metric."""
    return _canonical(name) in METRICS


def _metric_class(name: str) -> type[Metric]:
    key = _canonical(name)
    target = METRICS.get(key)
    if target is None:
        raise NotFoundError(
            f"unknown metric '{name}'",
            hint="known metrics: " + ", ".join(metric_names()),
        )
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def get_metric(name: str) -> Metric:
    """A fresh instance of the metric called `name` (case and '-'/'_' insensitive)."""
    return _metric_class(name)()


def list_metrics() -> list[tuple[str, bool, str]]:
    """(name, higher_is_better, description) for every metric, sorted by name."""
    out = []
    for name in metric_names():
        cls = _metric_class(name)
        out.append((name, cls.higher_is_better, cls.description))
    return out

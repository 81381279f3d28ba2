"""Scoring model answers: a registry of metrics and bootstrap confidence intervals.

Importing this package loads only numpy; each metric's own dependencies load on first use.
"""

from cliffscope.metrics.base import Metric, MetricResult
from cliffscope.metrics.bootstrap import (
    bootstrap_ci,
    bootstrap_corpus,
    corpus_scorer,
    paired_bootstrap_delta,
)
from cliffscope.metrics.registry import get_metric, list_metrics, metric_names

__all__ = [
    "Metric",
    "MetricResult",
    "bootstrap_ci",
    "bootstrap_corpus",
    "corpus_scorer",
    "get_metric",
    "list_metrics",
    "metric_names",
    "paired_bootstrap_delta",
]

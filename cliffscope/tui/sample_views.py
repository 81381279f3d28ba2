"""How the Samples tab lists one run kind's sample lines (a kind names its view by
"module:Class" in `RunKind.samples_view`). Presentation only, no Textual widgets.

A view groups the lines it is given per sample id, says the table's columns and one row per
sample, which samples are "interesting" (the `f` filter), and the text beside the picture.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text

from cliffscope.tui.format import clip
from cliffscope.tui.sample_source import SampleView
from cliffscope.tui.sample_text import BASE, analysis_detail, flips, score_of, sweep_detail
from cliffscope.vocab import fmt


class PlainSamples:
    """One line per sample: its answer and score (any kind whose lines carry them)."""

    columns: tuple[str, ...] = ("id", "prediction", "score")
    interesting = "wrong"  # what the `f` filter keeps

    def __init__(self) -> None:
        self.samples: dict[str, Any] = {}

    def add(self, record: dict[str, Any]) -> None:
        self.samples[str(record.get("id", record.get("key", "?")))] = record

    def keep(self, data: Any) -> bool:
        """Whether the sample stays when only the interesting ones are shown."""
        score = score_of(data)
        return score is None or score < 1.0

    def cells(self, sample_id: str, data: Any) -> list[Any]:
        return [sample_id, clip(str(data.get("prediction", "")), 12), fmt(score_of(data), 2)]

    def detail(self, sample_id: str, data: Any, view: SampleView | None) -> Text:
        return analysis_detail(sample_id, data or {}, view)

    def image_file(self, data: Any) -> Any:
        """The image file a sample line names (relative to the run dir), if any."""
        entry = (data or {}).get("map")
        return entry.get("image") if isinstance(entry, dict) else None


class AnalysisSamples(PlainSamples):
    columns = ("id", "prediction", "references", "score", "cliff")

    def cells(self, sample_id: str, data: Any) -> list[Any]:
        refs = data.get("references") or []
        cliff = data.get("cliff")
        return [
            sample_id,
            clip(str(data.get("prediction", "")), 12),
            clip(" | ".join(map(str, refs)), 12),
            fmt(score_of(data), 2),
            str(cliff if cliff is not None else "none"),
        ]


class SweepSamples(PlainSamples):
    """Lines keyed `{id}@{k}`: a sample is its baseline and its answer at every k."""

    columns = ("id", "baseline", "score", "flips", "flipped at k")
    interesting = "flipped"

    def add(self, record: dict[str, Any]) -> None:
        sample_id = str(record.get("id", record.get("key", "?")))
        self.samples.setdefault(sample_id, {})[record.get("k")] = record

    def keep(self, data: Any) -> bool:
        return bool(flips(data))

    def cells(self, sample_id: str, data: Any) -> list[Any]:
        flipped = flips(data)
        base = data.get(BASE) or {}
        ks = ", ".join(map(str, flipped[:4])) + (" …" if len(flipped) > 4 else "")
        return [
            sample_id,
            clip(str(base.get("prediction", "")), 12),
            fmt(score_of(base), 2),
            str(len(flipped)),
            ks,
        ]

    def detail(self, sample_id: str, data: Any, view: SampleView | None) -> Text:
        return sweep_detail(sample_id, data or {}, view)

    def image_file(self, data: Any) -> Any:
        return None  # redrawn from the task in run.toml

"""The text beside a sample's picture in the Samples tab (presentation only, no science).

Sweep: question, references, the baseline answer and the answer at every k, runs of equal
answers folded into one line (`k 2–31`), and the flip points (the k whose score differs
from the baseline score). Analysis: the answer and a sparkline of each group's attention
mass per layer (group name with its token count), next to the group's even-spread level.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text

from cliffscope.tui.format import clip
from cliffscope.tui.sample_source import SampleView
from cliffscope.vocab import fmt

SPARK = "▁▂▃▄▅▆▇█"
BASE = "base"


def score_of(record: dict[str, Any] | None) -> float | None:
    value = (record or {}).get("score")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def flips(by_k: dict[Any, dict[str, Any]]) -> list[int]:
    """The k values whose score differs from the baseline score, sorted."""
    base = score_of(by_k.get(BASE))
    if base is None:
        return []
    return sorted(
        k for k, rec in by_k.items() if isinstance(k, int) and score_of(rec) not in (None, base)
    )


def k_runs(by_k: dict[Any, dict[str, Any]]) -> list[tuple[list[int], dict[str, Any]]]:
    """Consecutive swept k with the same answer and score, as (ks, first record)."""
    runs: list[tuple[list[int], dict[str, Any]]] = []
    for k in sorted(k for k in by_k if isinstance(k, int)):
        rec = by_k[k]
        if runs:
            ks, first = runs[-1]
            same = (first.get("prediction"), score_of(first)) == (
                rec.get("prediction"),
                score_of(rec),
            )
            if same:
                ks.append(k)
                continue
        runs.append(([k], rec))
    return runs


def sparkline(values: Any, top: float, width: int) -> str:
    """One character per layer (averaged down to `width` characters when there are more)."""
    import numpy as np

    row = np.asarray(values, dtype=np.float32)
    if row.size > width:
        row = np.array([chunk.mean() for chunk in np.array_split(row, width)])
    scaled = np.clip(row / top, 0.0, 1.0) if top > 0 else np.zeros_like(row)
    return "".join(SPARK[int(round(v * (len(SPARK) - 1)))] for v in scaled)


def _about(text: Text, sample_id: str, record: dict[str, Any], view: SampleView | None) -> None:
    text.append(f"{sample_id}\n", style="bold")
    question = record.get("question") or (view.question if view else None)
    if question:
        text.append(f"{clip(str(question), 200)}\n", style="italic")
    refs = record.get("references") or (view.references if view else None)
    if refs:
        text.append("reference  ", style="dim")
        text.append(clip(" | ".join(map(str, refs)), 80) + "\n")
    if view is not None and view.note:
        text.append(view.note + "\n", style="dim")


def _answer(text: Text, label: str, rec: dict[str, Any], flipped: bool = False) -> None:
    score = score_of(rec)
    text.append(f"{label:<11}", style="dim")
    text.append(clip(repr(str(rec.get("prediction", ""))), 22), style="red" if flipped else "")
    text.append(f"  {fmt(score, 2)}", style="red" if flipped else "dim")
    if flipped:
        text.append("  flip", style="bold red")
    ids = rec.get("answer_ids")
    if isinstance(ids, list) and ids:
        text.append(f"  ids {' '.join(map(str, ids[:12]))}" + (" …" if len(ids) > 12 else ""))
    text.append("\n")


def sweep_detail(sample_id: str, by_k: dict[Any, dict[str, Any]], view: SampleView | None) -> Text:
    text = Text()
    base = by_k.get(BASE) or {}
    _about(text, sample_id, base, view)
    if base:
        _answer(text, "baseline", base)
    base_score = score_of(base)
    for ks, rec in k_runs(by_k):
        label = f"k {ks[0]}" if len(ks) == 1 else f"k {ks[0]}–{ks[-1]}"
        score = score_of(rec)
        _answer(text, label, rec, base_score is not None and score not in (None, base_score))
    flipped = flips(by_k)
    if flipped:
        text.append(f"flips at k = {', '.join(map(str, flipped))}", style="bold")
    elif base_score is not None:
        text.append("no flips: every k scores as the baseline", style="dim")
    return text


def analysis_detail(sample_id: str, rec: dict[str, Any], view: SampleView | None) -> Text:
    text = Text()
    _about(text, sample_id, rec, view)
    _answer(text, "answer", rec)
    mass = rec.get("mass")
    if isinstance(mass, tuple) and len(mass) == 2:
        groups, values = mass
        top = float(values.max()) if values.size else 0.0
        even = rec.get("even_spread") if isinstance(rec.get("even_spread"), dict) else {}
        tokens = rec.get("n_tokens") if isinstance(rec.get("n_tokens"), dict) else {}
        text.append(f"mass per layer 0–{values.shape[1] - 1}, full bar {top:.2f}\n", style="dim")
        for group, row in zip(groups, values, strict=True):
            count = tokens.get(group)
            label = f"{group} {count}" if isinstance(count, int) else group
            text.append(f"{clip(label, 15):<16}", style="dim")
            text.append(sparkline(row, top, 16), style="cyan" if group == "image" else "")
            spread = even.get(group)
            if isinstance(spread, (int, float)):
                text.append(f" even {spread:.2f}", style="dim")
            text.append("\n")
    cliff = rec.get("cliff")
    text.append(f"cliff at layer {cliff}" if cliff is not None else "no cliff", style="bold")
    return text

"""The Samples tab: each sample's answers (per k for a sweep) and where they flip.

Records arrive incrementally from the poller and are only kept here; the table is rebuilt
only while visible and at most `MAX_ROWS` long, so a 50,000-sample run stays responsive.
A flip at k is a score at k that differs from the sample's untruncated (baseline) score.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from cliffscope.tui.format import clip, num

MAX_ROWS = 500


def _score(record: dict[str, Any] | None) -> float | None:
    value = (record or {}).get("score")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def flips(by_k: dict[Any, dict[str, Any]]) -> list[int]:
    """The k values whose score differs from the baseline score, sorted."""
    base = _score(by_k.get("base"))
    if base is None:
        return []
    return sorted(
        k for k, rec in by_k.items() if isinstance(k, int) and _score(rec) not in (None, base)
    )


class SamplesPane(Vertical):
    BINDINGS = [Binding("f", "toggle_filter", "Only flips/wrong", show=False)]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.run_kind = "analysis"
        self.analysis: dict[str, dict[str, Any]] = {}
        self.sweep: dict[str, dict[Any, dict[str, Any]]] = {}
        self.only_interesting = False
        self.dirty = False
        self._shown: list[str] = []

    def compose(self) -> ComposeResult:
        yield Static(id="samples-note", classes="pane-note")
        yield DataTable(id="samples-table", cursor_type="row", zebra_stripes=True)
        yield Static(id="sample-detail")

    def reset(self, kind: str) -> None:
        self.run_kind = kind
        self.analysis.clear()
        self.sweep.clear()
        self.dirty = True

    def add(self, records: list[dict[str, Any]]) -> None:
        for rec in records:
            sid = str(rec.get("id", rec.get("key", "?")))
            if self.run_kind == "sweep":
                self.sweep.setdefault(sid, {})[rec.get("k")] = rec
            else:
                self.analysis[sid] = rec
        self.dirty = self.dirty or bool(records)

    @property
    def count(self) -> int:
        return len(self.sweep if self.run_kind == "sweep" else self.analysis)

    def _rows(self) -> list[tuple[str, list[Any]]]:
        rows: list[tuple[str, list[Any]]] = []
        if self.run_kind == "sweep":
            for sid, by_k in self.sweep.items():
                flipped = flips(by_k)
                if self.only_interesting and not flipped:
                    continue
                base = by_k.get("base") or {}
                ks = ", ".join(map(str, flipped[:8])) + (" …" if len(flipped) > 8 else "")
                cells = [
                    sid,
                    clip(str(base.get("prediction", "")), 24),
                    num(_score(base), 2),
                    str(len(flipped)),
                    ks,
                ]
                rows.append((sid, cells))
                if len(rows) >= MAX_ROWS:
                    break
        else:
            for sid, rec in self.analysis.items():
                score = _score(rec)
                if self.only_interesting and score is not None and score >= 1.0:
                    continue
                refs = rec.get("references") or []
                cells = [
                    sid,
                    clip(str(rec.get("prediction", "")), 24),
                    clip(" | ".join(map(str, refs)), 24),
                    num(score, 2),
                    str(rec.get("cliff") if rec.get("cliff") is not None else "none"),
                ]
                rows.append((sid, cells))
                if len(rows) >= MAX_ROWS:
                    break
        return rows

    def render_table(self) -> None:
        """Rebuild the table if new records came in (call while the tab is visible)."""
        if not self.dirty or not self.is_mounted:
            return
        self.dirty = False
        table = self.query_one(DataTable)
        keep = table.cursor_row
        table.clear(columns=True)
        if self.run_kind == "sweep":
            table.add_columns("id", "baseline answer", "score", "flips", "flipped at k")
        else:
            table.add_columns("id", "prediction", "references", "score", "cliff")
        rows = self._rows()
        self._shown = [sid for sid, _ in rows]
        for sid, cells in rows:
            table.add_row(*cells, key=sid)
        if rows:
            table.move_cursor(row=min(keep, len(rows) - 1), animate=False)
        what = "flipped" if self.run_kind == "sweep" else "wrong"
        note = f"{self.count} samples"
        if self.only_interesting:
            note += f", only {what} shown"
        if len(rows) >= MAX_ROWS:
            note += f", first {MAX_ROWS} listed"
        self.query_one("#samples-note", Static).update(note + f"   (f: only {what})")
        self._detail()

    def action_toggle_filter(self) -> None:
        self.only_interesting = not self.only_interesting
        self.dirty = True
        self.render_table()

    @on(DataTable.RowHighlighted)
    def _detail(self) -> None:
        table = self.query_one(DataTable)
        detail = self.query_one("#sample-detail", Static)
        if not self._shown or not (0 <= table.cursor_row < len(self._shown)):
            detail.update("")
            return
        sid = self._shown[table.cursor_row]
        if self.run_kind == "sweep":
            by_k = self.sweep.get(sid, {})
            base = _score(by_k.get("base"))
            text = Text(f"{sid}  answers per k: ", style="bold")
            ks = sorted(k for k in by_k if isinstance(k, int))
            for k in ["base", *ks]:
                rec = by_k.get(k) or {}
                score = _score(rec)
                style = "red" if k != "base" and score is not None and score != base else ""
                text.append(f"{k}:", style="dim")
                text.append(f"{clip(str(rec.get('prediction', '')), 16)} ", style=style)
        else:
            rec = self.analysis.get(sid, {})
            text = Text(f"{sid}  ", style="bold")
            text.append(f"answer {clip(str(rec.get('prediction', '')), 60)!r}  ")
            text.append(
                f"references {rec.get('references')}  tokens {rec.get('n_tokens')}", style="dim"
            )
        detail.update(text)

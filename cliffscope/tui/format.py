"""Table cells of the dashboard: status colours, progress bars, clipped text.

Numbers, ages and the missing-value glyph come from `cliffscope.vocab`, the same words the
reports and the CLI use; this module only adds what exists in a terminal table.
"""

from __future__ import annotations

from rich.text import Text

from cliffscope.vocab import STATUS_STYLE


def status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLE.get(status, ""))


def progress_cell(done: int, total: int, width: int = 14) -> Text:
    """A bar plus `done/total` (or a percentage when that does not fit) in `width` cells."""
    if total <= 0:
        return Text("")
    frac = min(max(done / total, 0.0), 1.0)
    bar_width = max(2, min(width - 6, 8))
    count = f"{done}/{total}"
    if bar_width + 1 + len(count) > width:
        count = f"{int(100 * frac)}%"
    filled = int(round(frac * bar_width))
    bar = Text("█" * filled, style="green" if frac >= 1 else "cyan")
    bar.append("░" * (bar_width - filled), style="grey42")
    bar.append(f" {count}")
    return bar


def clip(text: str, width: int) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"

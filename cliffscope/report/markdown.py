"""Markdown building blocks: escaping, tables, number formats. Pure text, no I/O.

Everything a dataset or a user supplied (questions, answers, profile and task names) passes
through `md_escape` before it lands in a report, so a `|` in an answer cannot split a table row,
a backtick cannot open a code span and `<script>` stays text on a code-hosting site.

Numbers are printed with fixed decimals per kind (`MASS_DECIMALS`, `SCORE_DECIMALS`, ...);
tests parse the tables back and compare them with result.json to that precision.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

MASS_DECIMALS = 4
SCORE_DECIMALS = 3
DEPTH_DECIMALS = 3
PCT_DECIMALS = 1
LATENCY_DECIMALS = 1
MISSING = "—"

# Characters with inline meaning in CommonMark/GFM (\ first so escapes are not re-escaped).
_SPECIAL = re.compile(r"([\\`*_\[\]|~$#])")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# Every character some tool treats as a line break (Python's splitlines, Unicode, C1 NEL).
_NEWLINES = re.compile(r"\s*[\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]+\s*")


def md_escape(text: Any, limit: int | None = None) -> str:
    """Text safe inside a Markdown paragraph or table cell, on one line.

    Escapes inline syntax (emphasis, code, links, pipes, math), turns HTML into entities,
    joins lines with a space, turns tabs into spaces and drops control characters. `limit`
    cuts long text first (with an ellipsis), so an escape sequence is never cut in half.
    """
    s = _NEWLINES.sub(" ", str(text).replace("\t", " "))
    s = _CONTROL.sub("", s).strip()
    if limit is not None and len(s) > limit:
        s = s[: max(limit - 1, 0)].rstrip() + "…"
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _SPECIAL.sub(r"\\\1", s)


def md_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()
) -> str:
    """A GFM table. Cells must already be escaped; `right` lists right-aligned columns."""
    align = ["---:" if i in right else "---" for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(align) + " |"]
    for row in rows:
        cells = [c if c != "" else " " for c in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def md_image(alt: str, rel_path: str) -> str:
    """An image link; `rel_path` is relative to the Markdown file (code hosts need that)."""
    return f"![{md_escape(alt)}]({rel_path})"


def md_link(text: str, rel_path: str) -> str:
    return f"[{md_escape(text)}]({rel_path})"


def fenced(text: str, lang: str = "text") -> str:
    """A fenced block whose fence is longer than any backtick run inside it."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{text.rstrip()}\n{fence}"


# ---- numbers ---------------------------------------------------------------------------------


def finite(value: Any) -> float | None:
    """A finite float, or None for anything else (missing, null, NaN, text)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def fmt(value: Any, decimals: int) -> str:
    x = finite(value)
    return MISSING if x is None else f"{x:.{decimals}f}"


def fmt_signed(value: Any, decimals: int = SCORE_DECIMALS) -> str:
    x = finite(value)
    return MISSING if x is None else f"{x:+.{decimals}f}"


def fmt_interval(lo: Any, hi: Any, decimals: int) -> str:
    if finite(lo) is None or finite(hi) is None:
        return MISSING
    return f"[{fmt(lo, decimals)}, {fmt(hi, decimals)}]"


def fmt_with_interval(mean: Any, lo: Any, hi: Any, decimals: int) -> str:
    """`0.1234 [0.1000, 0.1500]`, or just the mean when the interval is unknown."""
    if finite(mean) is None:
        return MISSING
    interval = fmt_interval(lo, hi, decimals)
    return fmt(mean, decimals) + ("" if interval == MISSING else f" {interval}")


def fmt_pct(value: Any, decimals: int = PCT_DECIMALS) -> str:
    x = finite(value)
    return MISSING if x is None else f"{100 * x:.{decimals}f}%"


def fmt_sci(value: Any) -> str:
    """Per-token densities span orders of magnitude: three significant digits."""
    x = finite(value)
    return MISSING if x is None else f"{x:.2e}"


def fmt_int(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int):
        return MISSING
    return str(value)


def fmt_duration(seconds: float | None) -> str:
    if seconds is None or seconds < 0:
        return MISSING
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"

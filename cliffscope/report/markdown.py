"""Markdown building blocks: escaping, tables, number formats. Pure text, no I/O.

Everything a dataset or a user supplied (questions, answers, profile and task names) passes
through `md_escape` before it lands in a report, so a `|` in an answer cannot split a table row,
a backtick cannot open a code span and `<script>` stays text on a code-hosting site.

Numbers are printed by `cliffscope.vocab` with fixed decimals per kind (`MASS_DECIMALS`,
`SCORE_DECIMALS`, ...); tests parse the tables back and compare them with result.json.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from cliffscope.vocab import MISSING

TEXT_LIMIT = 80

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


def md_cell(value: Any, limit: int = TEXT_LIMIT) -> str:
    """A table cell from dataset or user text: escaped and cut, or the missing glyph."""
    return MISSING if value is None or value == "" else md_escape(value, limit)


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

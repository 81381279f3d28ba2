"""Markdown helpers: dataset text cannot break a report, numbers print as documented."""

from __future__ import annotations

import html
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from cliffscope.report.markdown import fenced, md_escape, md_table
from cliffscope.vocab import fmt, fmt_duration, fmt_interval, fmt_pct, fmt_signed, fmt_with_interval

CELL_SPLIT = re.compile(r"(?<!\\)\|")


def split_row(line: str) -> list[str]:
    """How a GFM renderer splits a table row: on pipes not preceded by a backslash."""
    return [c.strip() for c in CELL_SPLIT.split(line.strip())[1:-1]]


def unescape(text: str) -> str:
    return html.unescape(re.sub(r"\\(.)", r"\1", text))


def normalised(text: str) -> str:
    """The text a reader should get back: one line, no control characters."""
    text = text.replace("\t", " ")
    lines = [line.strip() for line in text.splitlines()]
    one_line = " ".join(line for line in lines if line) if len(lines) > 1 else text
    return re.sub(r"[\x00-\x1f\x7f-\x9f]", "", one_line).strip()


HOSTILE = "a | b `code` *em* _u_ <script>alert(1)</script>\n[x](http://y) $x$ ~~s~~ # h \\"


def test_hostile_text_is_inert() -> None:
    out = md_escape(HOSTILE)
    assert "\n" not in out
    assert "<" not in out and ">" not in out
    for char in "|`*_[]~$#":
        assert all(out[i - 1] == "\\" for i, c in enumerate(out) if c == char), char
    assert unescape(out) == normalised(HOSTILE)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_escaped_cell_never_splits_a_row_and_loses_nothing(text: str) -> None:
    out = md_escape(text)
    row = md_table(["a", "b", "c"], [["x", out, "y"]]).splitlines()[-1]
    assert len(split_row(row)) == 3
    assert len(out.splitlines()) <= 1 and "<" not in out
    assert unescape(out) == normalised(text)


def test_limit_cuts_before_escaping() -> None:
    out = md_escape("|" * 50, limit=10)
    assert out.endswith("…")
    assert out.count("\\|") == 9  # whole escapes only


def test_fence_outgrows_backticks_inside() -> None:
    block = fenced("a ``` b\n````")
    first, *_, last = block.splitlines()
    assert first == "`````text" and last == "`````"


def test_number_formats() -> None:
    assert fmt(0.123456, 4) == "0.1235"
    assert fmt(None, 3) == fmt(float("nan"), 3) == fmt("x", 3) == "—"
    assert fmt_signed(0.05) == "+0.050" and fmt_signed(-0.5) == "-0.500"
    assert fmt_interval(0.1, 0.2, 3) == "[0.100, 0.200]"
    assert fmt_interval(None, 0.2, 3) == "—"
    assert fmt_with_interval(0.5, None, None, 4) == "0.5000"
    assert fmt_with_interval(0.5, 0.4, 0.6, 4) == "0.5000 [0.4000, 0.6000]"
    assert fmt_pct(0.8512) == "85.1%"
    assert fmt_duration(3725) == "1h 02m 05s"
    assert fmt_duration(125) == "2m 05s"
    assert fmt_duration(None) == "—"


def test_table_shape() -> None:
    text = md_table(["k", "score"], [["0", "0.5"], ["1", ""]], right=(1,))
    lines = text.splitlines()
    assert lines[1] == "| --- | ---: |"
    assert all(len(split_row(line)) == 2 for line in lines)

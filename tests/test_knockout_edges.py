"""The knockout edge vocabulary: what `--edges` accepts and refuses (no model needed)."""

from __future__ import annotations

import pytest

from cliffscope.errors import ValidationError
from cliffscope.knockout_edges import (
    DEFAULT_EDGES,
    GROUPS,
    Edge,
    parse_edge,
    parse_edges,
)


def test_an_edge_reads_source_then_target() -> None:
    assert parse_edge("image->last") == Edge(source="image", target="last")
    assert parse_edge(" Image -> Instruction ") == Edge("image", "instruction")
    assert str(Edge("system", "last")) == "system->last"


def test_the_default_list_is_the_issues() -> None:
    assert [str(e) for e in DEFAULT_EDGES] == [
        "image->last", "image->instruction", "instruction->last", "system->last",
    ]  # fmt: skip
    assert parse_edges(None) == parse_edges("") == list(DEFAULT_EDGES)


def test_a_list_keeps_its_order_without_duplicates() -> None:
    assert parse_edges("system->last, image->last,system->last") == [
        Edge("system", "last"),
        Edge("image", "last"),
    ]


@pytest.mark.parametrize(
    "text, message",
    [
        ("image", "cannot read"),
        ("image->", "cannot read"),
        ("image->last->instruction", "cannot read"),
        ("pixels->last", "unknown source group 'pixels'"),
        ("image->answer", "unknown target group 'answer'"),
        ("image->image", "itself"),
        ("last->instruction", "after the last prompt position"),
        ("image->system", "system queries come before"),
    ],
)
def test_impossible_edges_are_refused_clearly(text: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as info:
        parse_edge(text)
    assert info.value.hint


def test_every_possible_edge_parses() -> None:
    possible = [
        f"{s}->{t}" for s in GROUPS for t in GROUPS if s != t and s != "last" and t != "system"
    ]
    assert len(possible) == 7
    assert [str(e) for e in parse_edges(",".join(possible))] == possible


def test_a_list_of_nothing_is_refused() -> None:
    with pytest.raises(ValidationError, match="names no edge"):
        parse_edges(" , ,")

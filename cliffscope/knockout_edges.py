"""The edges attention knockout blocks, as a user writes them, checked before any model loads.

An edge `source->target` blocks the TARGET group's queries from the SOURCE group's keys
(information would flow from source to target along it). The groups are the prompt's token
groups (`models.batch.TokenGroups`) with the last prompt position taken out as its own group:

- `system`: every position before the first image token (BOS, system prompt, the user-turn
  prefix, begin-of-image markers);
- `image`: every image-token position;
- `instruction`: every other prompt position after the first image token EXCEPT the last one
  (separators inside an image run, end-of-image markers, the question, the assistant prefix);
- `last`: the last prompt position, the query whose logits give the first answer token.

Teacher-forced answer positions belong to no group: they are never blocked and never keys of
a blocked pair. An edge whose pairs can never exist is refused: `last` as a source (no prompt
query comes after it), `system` as a target (system queries precede every other group), and a
group with itself. Torch-free, so the CLI and the dashboard can parse `--edges`.
"""

from __future__ import annotations

from dataclasses import dataclass

from cliffscope.errors import ValidationError

#: the knockout groups, in prompt order
GROUPS: tuple[str, ...] = ("system", "image", "instruction", "last")
LAST = "last"
ARROW = "->"
DEFAULT_EDGES_TEXT = "image->last,image->instruction,instruction->last,system->last"
EDGES_HELP = (
    "Attention edges to knock out, 'source->target' comma-separated (the target's queries lose "
    f"the source's keys); groups: {', '.join(GROUPS)}. Default: {DEFAULT_EDGES_TEXT}."
)


@dataclass(frozen=True, order=True)
class Edge:
    """Block the `target` group's queries from the `source` group's keys."""

    source: str
    target: str

    def __post_init__(self) -> None:
        for role, group in (("source", self.source), ("target", self.target)):
            if group not in GROUPS:
                raise ValidationError(
                    f"unknown {role} group {group!r} in knockout edge {self}",
                    hint=EDGES_HELP,
                )
        if self.source == self.target:
            raise ValidationError(
                f"knockout edge {self} joins a group to itself", hint="name two different groups"
            )
        if self.source == LAST:
            raise ValidationError(
                f"knockout edge {self}: no prompt query comes after the last prompt position, "
                "so nothing can read it",
                hint="use 'last' as a target, e.g. image->last",
            )
        if self.target == "system":
            raise ValidationError(
                f"knockout edge {self}: system queries come before every other group, so they "
                "never see its keys",
                hint="use 'system' as a source, e.g. system->last",
            )

    def __str__(self) -> str:
        return f"{self.source}{ARROW}{self.target}"


def parse_edge(text: str) -> Edge:
    """'image->last' -> Edge("image", "last")."""
    parts = [p.strip().lower() for p in text.split(ARROW)]
    if len(parts) != 2 or not all(parts):
        raise ValidationError(f"cannot read knockout edge {text.strip()!r}", hint=EDGES_HELP)
    return Edge(*parts)


def parse_edges(text: str | None) -> list[Edge]:
    """'image->last,system->last' (None or '' = the default list) -> edges, in the given order,
    duplicates removed."""
    if text is None or not text.strip():
        text = DEFAULT_EDGES_TEXT
    out: list[Edge] = []
    for part in text.split(","):
        if part.strip():
            edge = parse_edge(part)
            if edge not in out:
                out.append(edge)
    if not out:
        raise ValidationError(f"--edges {text!r} names no edge", hint=EDGES_HELP)
    return out


DEFAULT_EDGES: tuple[Edge, ...] = tuple(parse_edges(DEFAULT_EDGES_TEXT))

"""`cliffscope models check PROFILE`: load a model and show how cliffscope sees it.

The check a researcher runs once per new checkpoint: does it load, which adapter took it, how
many image tokens a sample gets, and do the four token groups fall where they should.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from cliffscope.cli.context import Ctx, console, emit_json, pass_ctx
from cliffscope.errors import CliffscopeError, Location
from cliffscope.profiles import find_profile
from cliffscope.vocab import GROUPS, group_badge

if TYPE_CHECKING:
    from rich.text import Text

    from cliffscope.models.summary import ModelSummary

GROUP_STYLES = {group: group_badge(group) for group in GROUPS}


@click.group("models")
def models_group() -> None:
    """Model adapters: check that a profile's model loads and is read correctly, and which
    families the installed transformers supports."""


def _add_support() -> None:
    from cliffscope.cli.support_cmd import support_cmd

    models_group.add_command(support_cmd)


_add_support()


@models_group.command("check")
@click.argument("profile")
@click.option("--image", "image_path", type=click.Path(exists=True, dir_okay=False),
              help="Sample image (default: a synthetic 640x480 picture).")  # fmt: skip
@click.option("--prompt", default="What color is the circle?", show_default=True,
              help="Sample question.")  # fmt: skip
@click.option("--generate/--no-generate", default=True, show_default=True,
              help="Greedy-answer the sample and show the output group.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_ctx
def check_cmd(
    ctx: Ctx, profile: str, image_path: str | None, prompt: str, generate: bool, as_json: bool
) -> None:
    """Load PROFILE's model and print its layout, one sample's token groups and memory."""
    loaded = find_profile(profile, ctx.profiles_dir)
    image = _open_image(image_path)
    from cliffscope.models.loading import load_adapter
    from cliffscope.models.summary import summarize

    if not as_json:
        console().print(f"loading [bold]{loaded.profile.name}[/] ({loaded.profile.model}) …")
    adapter = load_adapter(loaded.profile)
    summary = summarize(adapter, image, prompt, generate=generate)
    if as_json:
        emit_json(summary.to_json())
    else:
        render(summary)


def _open_image(path: str | None):
    from cliffscope.models.summary import sample_image

    if path is None:
        return sample_image()
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise CliffscopeError(f"cannot read image: {exc}", where=Location(path)) from None


def strip_text(summary: ModelSummary) -> Text:
    """The coloured token strip: one cell per token, long identical runs as `tok×n`."""
    from rich.text import Text

    text = Text()
    for i, piece in enumerate(summary.strip):
        label = piece.text if piece.count == 1 else f"{piece.text}×{piece.count}"
        if i:
            text.append(" ")
        text.append(label, style=GROUP_STYLES.get(piece.group, "dim"))
    return text


def _gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**27 else f"{n / 2**20:.1f} MiB"


def render(summary: ModelSummary) -> None:
    from rich.table import Table
    from rich.text import Text

    con = console()
    s = summary
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    facts.add_row("family", f"{s.family}  ({s.model_class})")
    facts.add_row("model", s.source)
    facts.add_row("layers", str(s.num_layers))
    facts.add_row(
        "heads", f"{s.num_heads} query / {s.num_kv_heads} key-value, head dim {s.head_dim}"
    )
    facts.add_row("hidden size", f"{s.hidden_size}  (vocab {s.vocab_size:,})")
    vision = (
        f" (vision tower {s.vision_attn_implementation})" if s.vision_attn_implementation else ""
    )
    facts.add_row("weights", f"{s.dtype} on {s.device}, attention {s.attn_implementation}{vision}")
    facts.add_row(
        "image tokens",
        f"{s.image_tokens} for a {s.image_size[0]}x{s.image_size[1]} image; grids "
        + ", ".join(f"{g['label']} {g['rows']}x{g['cols']}" for g in s.grids),
    )
    facts.add_row("parameters", f"{s.parameters:,}")
    facts.add_row(
        "memory",
        f"weights {_gib(s.weights_bytes)} + KV cache {_gib(s.kv_bytes_per_1k_tokens)} "
        "per 1k tokens per sequence",
    )
    con.print(facts)
    con.print()
    legend = Text("groups: ")
    for name, style in GROUP_STYLES.items():
        runs = s.groups[name]
        legend.append(f" {name} {sum(stop - start for start, stop in runs)} ", style=style)
        legend.append(" " + " ".join(f"[{start},{stop})" for start, stop in runs) + "  ")
    con.print(legend)
    con.print(strip_text(s))
    if s.answer is not None:
        con.print(Text.assemble(("answer: ", "bold"), repr(s.answer)))

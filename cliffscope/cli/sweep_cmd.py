"""`cliffscope sweep`: create a truncation-sweep run and start its worker.

Like `analyze`, the command validates everything cheaply (profile, task, subset, the layer
list's syntax) and writes the run directory before any model is loaded; the worker resolves
`all` and checks the layers against the model's depth. `--detach` prints the run id and
returns; otherwise a progress bar follows the worker. Resume with `cliffscope runs resume`.
No torch is imported here.
"""

from __future__ import annotations

from typing import Any

import click

from cliffscope.cli.context import Ctx, pass_ctx
from cliffscope.cli.run_options import launch_options, sample_options, start_run
from cliffscope.errors import ValidationError

LAYERS_HELP = (
    "Truncation layers k: 'all' (0..L, the default), a list '0,4,8', or a range 'a:b' / "
    "'a:b:step' whose END IS INCLUDED ('0:32:2' = 0,2,...,32). k = L is the untruncated model."
)


def parse_layers(text: str | None) -> str | list[int]:
    """'all' | '0,4,8' | 'a:b[:step]' (end inclusive) -> "all" or a sorted list of ints."""
    if text is None or text.strip().lower() in ("", "all"):
        return "all"
    text = text.strip()
    try:
        if ":" in text:
            parts = [int(p) for p in text.split(":")]
            if len(parts) not in (2, 3):
                raise ValueError
            start, end, step = (*parts, 1) if len(parts) == 2 else parts
            if step <= 0 or start > end:
                raise ValueError
            layers = list(range(start, end + 1, step))
        else:
            layers = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise ValidationError(
            f"cannot read --layers {text!r}", hint=LAYERS_HELP.replace("'", "")
        ) from None
    if not layers or min(layers) < 0:
        raise ValidationError(f"--layers {text!r} must name layers >= 0", hint=LAYERS_HELP)
    return sorted(set(layers))


@click.command("sweep")
@sample_options
@click.option("--layers", "layers", default="all", show_default=True, help=LAYERS_HELP)
@click.option(
    "--mode",
    type=click.Choice(["drop", "mask"]),
    default="drop",
    show_default=True,
    help="drop: image tokens leave hidden states, KV cache and masks; mask: image keys are "
    "masked, nothing removed (the paper's / FastV's code).",
)
@click.option(
    "--keep-ratio",
    type=click.FloatRange(0.0, 1.0),
    help="Keep the top R of image tokens ranked by the last prompt position's attention at "
    "layer k-1 (FastV); k starts at 1.",
)
@click.option(
    "--tolerance",
    type=click.FloatRange(min=0.0),
    default=0.01,
    show_default=True,
    help="Largest drop from the baseline still counted as recovered (metric units; "
    "0.01 = one point), besides an interval that reaches the baseline.",
)
@click.option(
    "--engine",
    type=click.Choice(["shared", "naive"]),
    default="shared",
    show_default=True,
    help="shared: one forward per batch, layers k..L-1 recomputed per k; naive: every k on "
    "its own (same answers, slower; for checking).",
)
@launch_options
@pass_ctx
def sweep_command(
    ctx: Ctx,
    layers: str,
    mode: str,
    keep_ratio: float | None,
    tolerance: float,
    engine: str,
    **run_args: Any,
) -> None:
    """Score the task with image tokens truncated from layer k on, for every k, and find the
    sweep's cliff (shown beside the flow cliff of an analysis of the same profile and task)."""
    parsed = parse_layers(layers)
    if keep_ratio is not None and parsed != "all" and 0 in parsed:
        raise ValidationError(
            "--keep-ratio ranks image tokens by the attention at layer k-1, so k starts at 1",
            hint="drop 0 from --layers",
        )
    params = {
        "layers": parsed,
        "mode": mode,
        "keep_ratio": keep_ratio,
        "tolerance": tolerance,
        "engine": engine,
    }
    start_run(ctx, "sweep", params, **run_args)

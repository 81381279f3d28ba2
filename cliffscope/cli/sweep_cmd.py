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
from cliffscope.sweep_layers import LAYERS_HELP, check_keep_ratio_layers, parse_layers


@click.command("sweep")
@sample_options
@click.option("--layers", "layers", default="all", show_default=True, help=LAYERS_HELP)
@click.option(
    "--mode",
    type=click.Choice(["drop", "mask"]),
    default="drop",
    show_default=True,
    help="drop: image tokens leave hidden states, KV cache and masks; mask: image keys are "
    "masked, nothing removed (the paper's / FastV's code). On text positions the two are "
    "identical (tested), so --engine shared computes mask mode by dropping (run.toml and the "
    "run log say so); --engine naive computes it through masks.",
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
@click.option(
    "--verify",
    type=click.IntRange(min=0),
    help="Re-run N samples with the naive engine and record how often the shared engine's "
    "answers agree (with the margin of each disagreement). Default: 8 in bfloat16/float16, "
    "where rounding can flip near-tied tokens, 0 in float32; 0 turns it off.",
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
    verify: int | None,
    **run_args: Any,
) -> None:
    """Score the task with image tokens truncated from layer k on, for every k, and find the
    sweep's cliff (shown beside the flow cliff of an analysis of the same profile and task)."""
    parsed = parse_layers(layers)
    check_keep_ratio_layers(parsed, keep_ratio)
    params = {
        "layers": parsed,
        "mode": mode,
        "keep_ratio": keep_ratio,
        "tolerance": tolerance,
        "engine": engine,
        "verify": verify,
    }
    if mode == "mask" and engine == "shared":
        params["computed_as"] = "drop"
    start_run(ctx, "sweep", params, **run_args)

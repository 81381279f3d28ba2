"""`cliffscope analyze`: create an analysis run and start its worker.

The command validates everything cheaply (profile, task, subset) and writes the run directory
before any model is loaded; the worker (`python -m cliffscope.worker RUN_DIR`) does the rest.
With `--detach` it prints the run id and returns at once; otherwise it follows the worker's
events with a progress bar and exits with the run's outcome. No torch is imported here.
"""

from __future__ import annotations

from typing import Any

import click

from cliffscope.cli.context import Ctx, pass_ctx
from cliffscope.cli.run_options import launch_options, sample_options, start_run


@click.command("analyze")
@sample_options
@click.option(
    "--query",
    type=click.Choice(["last", "answer"]),
    default="last",
    show_default=True,
    help="Attention of the last prompt position, or of every answer token (teacher-forced).",
)
@click.option(
    "--heads",
    type=click.Choice(["mean", "max"]),
    default="mean",
    show_default=True,
    help="How attention heads are reduced (max as in the paper's code).",
)
@click.option(
    "--cam",
    is_flag=True,
    help="LLaVA-CAM and attention maps for EVERY sample (default: the first --map-samples).",
)
@click.option(
    "--map-samples",
    type=click.IntRange(min=0),
    default=4,
    show_default=True,
    help="Samples that get attention + CAM maps.",
)
@click.option(
    "--smoothgrad",
    "smooth_n",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="SmoothGrad copies for CAM (0 = off).",
)
@click.option(
    "--sigma",
    "smooth_sigma",
    type=click.FloatRange(min=0.0),
    default=0.15,
    show_default=True,
    help="SmoothGrad noise, as a fraction of the pixel range.",
)
@launch_options
@pass_ctx
def analyze_command(
    ctx: Ctx,
    query: str,
    heads: str,
    cam: bool,
    map_samples: int,
    smooth_n: int,
    smooth_sigma: float,
    **run_args: Any,
) -> None:
    """Attention flow per layer and group, the cliff, and maps for a few samples."""
    params = {
        "query": query,
        "heads": heads,
        "cam": cam,
        "map_samples": map_samples,
        "smooth_n": smooth_n,
        "smooth_sigma": smooth_sigma,
    }
    start_run(ctx, "analysis", params, **run_args)

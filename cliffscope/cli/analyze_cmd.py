"""`cliffscope analyze`: create an analysis run and start its worker.

The command validates everything cheaply (profile, task, subset) and writes the run directory
before any model is loaded; the worker (`python -m cliffscope.worker RUN_DIR`) does the rest.
With `--detach` it prints the run id and returns at once; otherwise it follows the worker's
events with a progress bar and exits with the run's outcome. No torch is imported here.
"""

from __future__ import annotations

import click

from cliffscope.cli.context import Ctx, pass_ctx


@click.command("analyze")
@click.option("--profile", "-p", "profile", required=True, help="Model profile name or file.")
@click.option("--task", "-t", "task", required=True, help="Task name or task TOML file.")
@click.option("--limit", "-n", type=click.IntRange(min=1), help="Number of samples (default: all).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the sample subset.")
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
@click.option(
    "--data", "data_path", type=click.Path(exists=True), help="Local copy of the dataset."
)
@click.option(
    "--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a task field."
)
@click.option("--detach", is_flag=True, help="Start the worker in the background and return.")
@click.option(
    "--processes",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Data-parallel worker processes (runs `accelerate launch` for you).",
)
@pass_ctx
def analyze_command(
    ctx: Ctx,
    profile: str,
    task: str,
    limit: int | None,
    seed: int,
    query: str,
    heads: str,
    cam: bool,
    map_samples: int,
    smooth_n: int,
    smooth_sigma: float,
    data_path: str | None,
    overrides: tuple[str, ...],
    detach: bool,
    processes: int,
) -> None:
    """Attention flow per layer and group, the cliff, and maps for a few samples."""
    from cliffscope.cli.follow import follow
    from cliffscope.run_factory import new_run
    from cliffscope.tasks.registry import parse_set
    from cliffscope.worker.launch import launch

    params = {
        "query": query,
        "heads": heads,
        "cam": cam,
        "map_samples": map_samples,
        "smooth_n": smooth_n,
        "smooth_sigma": smooth_sigma,
    }
    run = new_run(
        ctx.store(),
        "analysis",
        profile,
        task,
        params,
        limit=limit,
        seed=seed,
        data_path=data_path,
        task_overrides=parse_set(overrides) or None,
        profiles_dir=ctx.profiles_dir,
    )
    proc = launch(run.path, detach=True, processes=processes)
    click.echo(run.id)
    if detach:
        return
    raise SystemExit(follow(run, proc))

"""What every run kind's command shares: which samples to run on, and how the worker starts.

Every kind's command (`cli.kind_cmd`) validates cheaply, writes the run directory and hands
it to a worker process; only their parameters differ. The shared options are declared here
once so no command can drift from the others (a `--processes` on one but not another, say).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from cliffscope.cli.context import Ctx

F = TypeVar("F", bound=Callable[..., Any])

#: the keyword arguments the shared options give a command (passed on to `start_run`)
RUN_ARGS = (
    "profile",
    "task",
    "limit",
    "seed",
    "max_new_tokens",
    "data_path",
    "overrides",
    "detach",
    "processes",
)


def sample_options(command: F) -> F:
    """``--profile --task --limit --seed`` (listed first in ``--help``)."""
    for option in reversed(
        [
            click.option(
                "--profile", "-p", "profile", required=True, help="Model profile name or file."
            ),
            click.option(
                "--task", "-t", "task", required=True, help="Task name or task TOML file."
            ),
            click.option(
                "--limit",
                "-n",
                type=click.IntRange(min=1),
                help="Number of samples (default: all).",
            ),
            click.option(
                "--seed", type=int, default=0, show_default=True, help="Seed of the sample subset."
            ),
        ]
    ):
        command = option(command)
    return command


def launch_options(command: F) -> F:
    """``--max-new-tokens --data --set --detach --processes`` (listed last in ``--help``)."""
    for option in reversed(
        [
            click.option(
                "--max-new-tokens",
                type=click.IntRange(min=1),
                help="Answer length cap in tokens; overrides the profile's and the task's "
                "(default: the smaller of the two).",
            ),
            click.option(
                "--data",
                "data_path",
                type=click.Path(exists=True),
                help="Local copy of the dataset.",
            ),
            click.option(
                "--set",
                "overrides",
                multiple=True,
                metavar="KEY=VALUE",
                help="Override a task field.",
            ),
            click.option(
                "--detach", is_flag=True, help="Start the worker in the background and return."
            ),
            click.option(
                "--processes",
                type=click.IntRange(min=1),
                default=1,
                show_default=True,
                help="Data-parallel worker processes (runs `accelerate launch` for you).",
            ),
        ]
    ):
        command = option(command)
    return command


def start_run(
    ctx: Ctx,
    kind: str,
    params: dict[str, Any],
    *,
    profile: str,
    task: str,
    limit: int | None,
    seed: int,
    max_new_tokens: int | None,
    data_path: str | None,
    overrides: tuple[str, ...],
    detach: bool,
    processes: int,
) -> None:
    """Write the run directory, start its worker, print the run id, then follow or return.

    ``max_new_tokens`` joins the run's params (run.toml's [params]), where the worker's
    `JobContext.max_new_tokens` prefers it to the profile's and the task's caps.
    """
    from cliffscope import runops
    from cliffscope.cli.follow import follow
    from cliffscope.tasks.registry import parse_set

    run, proc = runops.start(
        ctx.store(),
        kind,
        profile,
        task,
        params | {"max_new_tokens": max_new_tokens},
        limit=limit,
        seed=seed,
        data_path=data_path,
        task_overrides=parse_set(overrides) or None,
        profiles_dir=ctx.profiles_dir,
        processes=processes,
    )
    click.echo(run.id)
    if detach:
        return
    raise SystemExit(follow(run, proc))

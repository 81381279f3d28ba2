"""`cliffscope <kind command>` (analyze, sweep, and any plugin kind's): generated, not written.

Each run kind's command is built from its typed parameters (`kinds.params`): one option per
visible field, with the field's flag, help and default, between the shared sample options and
launch options (`run_options`). The command validates cheaply, writes the run directory
before any model is loaded and starts the worker (`python -m cliffscope.worker RUN_DIR`);
with `--detach` it prints the run id and returns, otherwise a progress bar follows the worker
and the command exits with the run's outcome. Resume with `cliffscope runs resume`. No torch
is imported here.
"""

from __future__ import annotations

from typing import Any

import click

from cliffscope.cli.context import Ctx, pass_ctx
from cliffscope.cli.run_options import RUN_ARGS, launch_options, sample_options, start_run
from cliffscope.kinds.base import RunKind
from cliffscope.kinds.params import ParamField


def _option(field: ParamField) -> Any:
    """The click option of one parameter field."""
    kwargs: dict[str, Any] = {"help": field.help}
    if field.type == "bool":
        flag = field.flag if not field.default else f"{field.flag}/--no-{field.flag[2:]}"
        return click.option(flag, field.name, is_flag=True, default=bool(field.default), **kwargs)
    if field.type == "choice":
        kwargs["type"] = click.Choice([str(c) for c in field.choices()])
    elif field.type == "int":
        kwargs["type"] = click.IntRange(min=field.minimum, max=field.maximum)
    elif field.type == "float":
        kwargs["type"] = click.FloatRange(min=field.minimum, max=field.maximum)
    if field.default is not None:
        kwargs.update(default=field.default, show_default=True)
    return click.option(field.flag, field.name, **kwargs)


def kind_command(kind: RunKind) -> click.Command:
    """The CLI command that starts a run of `kind`."""
    fields = kind.Params.fields(visible=True)

    @pass_ctx
    def command(ctx: Ctx, **values: Any) -> None:
        run_args = {k: values.pop(k) for k in RUN_ARGS}
        raw = {k: v for k, v in values.items() if v is not None}
        params = kind.Params.parse(raw, naming="flag")
        start_run(ctx, kind.name, params.run_params(), **run_args)

    command.__doc__ = kind.help
    command = launch_options(command)
    for field in reversed(fields):
        command = _option(field)(command)
    command = sample_options(command)
    return click.command(kind.command, help=kind.help)(command)

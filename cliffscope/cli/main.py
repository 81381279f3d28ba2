"""`cliffscope` entry point. Bare `cliffscope` opens the dashboard; subcommands are headless.

Every CliffscopeError is rendered as one short screen on stderr with exit status 1; anything
unexpected is reported the same way with a pointer to `--debug` for the traceback.
"""

from __future__ import annotations

import os
import sys

import click

from cliffscope import __version__
from cliffscope.cli.context import Ctx
from cliffscope.errors import CliffscopeError


class LazyGroup(click.Group):
    """Subcommand groups are imported on first use, so `cliffscope --help` stays fast; each
    run kind's command (`kinds.registry`) is generated on first use (`cli.kind_cmd`)."""

    lazy: dict[str, str] = {
        "profiles": "cliffscope.cli.profiles_cmd:profiles_group",
        "tasks": "cliffscope.cli.tasks_cmd:tasks_group",
        "runs": "cliffscope.cli.runs_cmd:runs_group",
        "models": "cliffscope.cli.models_cmd:models_group",
        "demo": "cliffscope.cli.demo_cmd:demo_group",
        "export": "cliffscope.cli.export_cmd:export_command",
        "tui": "cliffscope.cli.tui_cmd:tui_command",
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = set(super().list_commands(ctx)) | set(self._available())
        return sorted(names | set(self._kind_commands()))

    @staticmethod
    def _kind_commands() -> dict[str, str]:
        from cliffscope.kinds.registry import kinds

        return {kind.command: kind.name for kind in kinds()}

    def _available(self) -> dict[str, str]:
        from importlib.util import find_spec

        return {
            name: target
            for name, target in self.lazy.items()
            if find_spec(target.split(":")[0]) is not None
        }

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is not None:
            return command
        target = self._available().get(name)
        if target is None:
            kind = self._kind_commands().get(name)
            if kind is None:
                return None
            from cliffscope.cli.kind_cmd import kind_command
            from cliffscope.kinds.registry import get_kind

            return kind_command(get_kind(kind))
        module_name, attr = target.split(":")
        from importlib import import_module

        return getattr(import_module(module_name), attr)


@click.group(
    cls=LazyGroup,
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option(
    "--runs-dir",
    envvar="CLIFFSCOPE_RUNS",
    type=click.Path(file_okay=False),
    help="Run store (env CLIFFSCOPE_RUNS).",
)
@click.option(
    "--profiles-dir",
    envvar="CLIFFSCOPE_PROFILES",
    type=click.Path(file_okay=False),
    help="Profiles directory (env CLIFFSCOPE_PROFILES).",
)
@click.option(
    "--debug",
    is_flag=True,
    envvar="CLIFFSCOPE_DEBUG",
    help="Show tracebacks for unexpected errors.",
)
@click.version_option(__version__, prog_name="cliffscope")
@click.pass_context
def cli(ctx: click.Context, runs_dir: str | None, profiles_dir: str | None, debug: bool) -> None:
    """Measure how information flows through vision-language models.

    Without a command, opens the dashboard on the run store.
    """
    ctx.obj = Ctx(runs_dir=runs_dir, profiles_dir=profiles_dir)
    ctx.meta["debug"] = debug
    if ctx.invoked_subcommand is None:
        tui = cli.get_command(ctx, "tui")
        if tui is None or not sys.stdout.isatty():
            click.echo(ctx.get_help())
            return
        ctx.invoke(tui)


def main(argv: list[str] | None = None) -> None:
    debug = bool(os.environ.get("CLIFFSCOPE_DEBUG")) or "--debug" in (argv or sys.argv)
    try:
        rc = cli.main(args=argv, prog_name="cliffscope", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except CliffscopeError as exc:
        click.echo(exc.render(), err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the last line of defence for the user
        if debug:
            raise
        click.echo(f"error: unexpected {type(exc).__name__}: {exc}", err=True)
        click.echo("  hint: rerun with --debug for the traceback, and please report it", err=True)
        sys.exit(1)
    sys.exit(rc if isinstance(rc, int) else 0)

"""`cliffscope tui` (and bare `cliffscope` on a terminal): open the dashboard."""

from __future__ import annotations

import click

from cliffscope.cli.context import Ctx, pass_ctx


@click.command("tui")
@click.option(
    "--poll",
    type=click.FloatRange(0.1, 10.0),
    default=0.5,
    show_default=True,
    help="Seconds between reads of the run store.",
)
@pass_ctx
def tui_command(ctx: Ctx, poll: float) -> None:
    """Open the dashboard on the run store and the profiles directory.

    Workers started from it are detached: quitting (q) leaves them running, and reopening
    the dashboard shows them again. Pictures use Kitty graphics or Sixel when the terminal
    answers for one (not inside tmux or screen), else coloured half-blocks; set
    CLIFFSCOPE_GRAPHICS=auto|kitty|sixel|halfblock to choose, or press g in a run's view.
    """
    from cliffscope import paths
    from cliffscope.tui import graphics
    from cliffscope.tui.app import CliffscopeApp

    mode = graphics.detect()  # may ask the terminal: only possible before Textual starts
    app = CliffscopeApp(
        paths.runs_dir(ctx.runs_dir), ctx.profiles_dir, poll_interval=poll, graphics=mode
    )
    app.run()
    live = [r for r in app.runs if r.live]
    if live:
        click.echo(f"{len(live)} run(s) still going in the background:")
        for row in live:
            click.echo(f"  {row.id}  {row.status}  {row.done}/{row.total}")
        click.echo("reopen with `cliffscope`, or watch with `cliffscope runs show RUN`")

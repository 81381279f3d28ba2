"""`cliffscope export RUN [RUN ...]`: a report folder for papers, issues and chats."""

from __future__ import annotations

from pathlib import Path

import click

from cliffscope.cli.context import Ctx, emit_json, pass_ctx
from cliffscope.errors import ValidationError
from cliffscope.store import RunDir

FORMATS = ("md", "json", "csv")


def _parse_layers(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        raise ValidationError(
            f"--layers {text!r} is not a list of layer numbers", hint="e.g. --layers 0,4,8,16"
        ) from None


def _resolve(ctx: Ctx, ref: str) -> RunDir:
    """A run id (or unique prefix/suffix) in the store, or the path of a run directory."""
    path = Path(ref).expanduser()
    if ("/" in ref or ref.startswith(".")) and (path / "run.toml").is_file():
        return RunDir(path)
    return ctx.store().get(ref)


@click.command("export")
@click.argument("run_ids", nargs=-1, required=True, metavar="RUN [RUN ...]")
@click.option(
    "--format",
    "formats",
    type=click.Choice([*FORMATS, "all"]),
    multiple=True,
    help="md (summary + figures), json, csv, or all; repeat for several. Default: md.",
)
@click.option(
    "-o",
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write. Default: the run's own directory for one run, "
    "./cliffscope-report-<time>/ for several.",
)
@click.option("--layers", help="Layers to draw attention/CAM maps for, e.g. 0,4,8.")
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
@pass_ctx
def export_command(
    ctx: Ctx,
    run_ids: tuple[str, ...],
    formats: tuple[str, ...],
    out_dir: Path | None,
    layers: str | None,
    as_json: bool,
) -> None:
    """Write a report of one or more runs: Markdown with figures, JSON, CSV.

    Several runs also get compare.md: the runs on normalised depth, cliffs side by side.
    """
    from cliffscope.report import export_runs

    chosen = FORMATS if "all" in formats else tuple(dict.fromkeys(formats or ("md",)))
    runs = [_resolve(ctx, ref) for ref in run_ids]
    result = export_runs(runs, out_dir, formats=chosen, layers_for_maps=_parse_layers(layers))
    if as_json:
        emit_json(
            {
                "out_dir": str(result.out_dir),
                "markdown": str(result.markdown) if result.markdown else None,
                "files": [str(f) for f in result.files],
                "warnings": result.warnings,
            }
        )
        return
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"wrote {len(result.files)} files to {result.out_dir}")
    if result.markdown:
        click.echo(str(result.markdown))

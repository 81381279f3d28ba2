"""`cliffscope models support`: the support matrix for the installed transformers.

Builds the tiny offline checkpoint of every family (through its real config, tokenizer and
processor classes), runs every conformance check on it (`cliffscope.conformance`), and prints
family x check: what works on THIS installation, measured rather than promised.
"""

from __future__ import annotations

from typing import Any

import click

from cliffscope.cli.context import Ctx, console, emit_json, pass_ctx


@click.command("support")
@click.option("--family", "families", multiple=True, help="Only these families (repeatable).")
@click.option("--attn", "attention", multiple=True, type=click.Choice(["eager", "sdpa"]),
              help="Kernels to check (default: both).")  # fmt: skip
@click.option("--dtype", "dtypes", multiple=True, type=click.Choice(["float32", "bfloat16"]),
              help="Dtypes to check (default: float32; add --dtype bfloat16 for both).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_ctx
def support_cmd(
    ctx: Ctx,
    families: tuple[str, ...],
    attention: tuple[str, ...],
    dtypes: tuple[str, ...],
    as_json: bool,
) -> None:
    """Run the conformance checks on tiny models of every family; print family x check."""
    import torch
    import transformers

    from cliffscope.conformance.checks import CHECKS
    from cliffscope.conformance.suite import ATTENTION, family_builders, support_matrix
    from cliffscope.errors import CliffscopeError

    known = list(family_builders())
    unknown = [f for f in families if f not in known]
    if unknown:
        raise CliffscopeError(f"unknown family {unknown[0]!r}", hint="known: " + ", ".join(known))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models are dispatch-bound: one thread is fastest
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    con = console()
    try:
        rows = support_matrix(
            families or None,
            attention or ATTENTION,
            dtypes or ("float32",),
            progress=None if as_json else (lambda line: con.print(f"  {line}", style="dim")),
        )
    finally:
        torch.set_num_threads(threads)
    versions = {"transformers": transformers.__version__, "torch": torch.__version__}
    if as_json:
        emit_json({"versions": versions, "rows": rows})
        return
    con.width = max(con.width, 132)  # the matrix is wide; a pipe's 80 columns would truncate it
    con.print(_table(rows, list(CHECKS), versions))
    failed = [r for r in rows if not all(c["passed"] for c in r["checks"].values())]
    for row in failed:
        for name, check in row["checks"].items():
            if not check["passed"]:
                con.print(f"[red]✗[/] {row['family']} {row['attn']} {row['dtype']} {name}: "
                          f"{check['detail']}")  # fmt: skip
    if failed:
        raise SystemExit(1)


def _table(rows: list[dict[str, Any]], checks: list[str], versions: dict[str, str]) -> Any:
    from rich import box
    from rich.table import Table

    table = Table(
        title=f"transformers {versions['transformers']} · torch {versions['torch']}",
        box=box.SIMPLE_HEAD,
        padding=(0, 1),
    )
    for column in ("family", "kernel", "dtype", *checks, "s"):
        table.add_column(column, justify="center" if column in checks else "left", no_wrap=True)
    for row in rows:
        marks = ["[green]✓[/]" if row["checks"][c]["passed"] else "[red]✗[/]" for c in checks]
        table.add_row(row["family"], row["attn"], row["dtype"], *marks, f"{row['seconds']:.0f}")
    return table

"""`cliffscope runs list|show|cancel|resume|rm`."""

from __future__ import annotations

from typing import Any

import click

from cliffscope.cli.context import Ctx, console, emit_json, pass_ctx
from cliffscope.errors import CliffscopeError
from cliffscope.kinds.registry import get_kind, kind_names, kind_of
from cliffscope.store import RunDir
from cliffscope.vocab import STATUS_STYLE, age, fmt


def headline(run: RunDir) -> str:
    """One short phrase for tables: the score and the cliff, when there is a result."""
    from cliffscope.kinds.registry import headline as kind_headline

    return kind_headline(run.result() or {}, run.kind)


def summary(run: RunDir) -> dict[str, Any]:
    spec = run.spec
    done, total = run.progress()
    return {
        "id": run.id,
        "kind": spec.get("kind"),
        "status": run.status.value,
        "profile": spec.get("profile", {}).get("name"),
        "task": spec.get("task", {}).get("name"),
        "done": done,
        "total": total,
        "created": str(spec.get("created", "")),
        "headline": headline(run) if spec else "",
        "error": spec.get("error"),
        "problem": run.problem,
        "path": str(run.path),
    }


@click.group("runs")
def runs_group() -> None:
    """Runs in the run store (one directory each)."""


class KindChoice(click.ParamType):
    """A run kind's name, checked against the registry when the option is read (a kind
    registered after this module was imported counts)."""

    name = "kind"

    def convert(self, value: Any, param: Any, ctx: Any) -> str:
        names = kind_names()
        if value not in names:
            self.fail(f"{value!r} is not one of {', '.join(map(repr, names))}", param, ctx)
        return str(value)

    def get_metavar(self, *args: Any, **kwargs: Any) -> str:
        return "[" + "|".join(kind_names()) + "]"


@runs_group.command("list")
@click.option("--kind", type=KindChoice())
@click.option(
    "--status",
    type=click.Choice(
        ["queued", "running", "done", "failed", "cancelled", "interrupted", "unreadable"]
    ),
)
@click.option("--grep", "text", help="Keep runs whose id contains TEXT.")
@click.option("--sort", type=click.Choice(["age", "status", "profile", "task"]), default="age")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def list_cmd(
    ctx: Ctx, kind: str | None, status: str | None, text: str | None, sort: str, as_json: bool
) -> None:
    """List runs, newest first."""
    rows = [summary(r) for r in ctx.store().list(kind=kind, status=status, text=text)]
    if sort != "age":
        rows.sort(key=lambda r: str(r.get(sort) or ""))
    if as_json:
        emit_json(rows)
        return
    if not rows:
        click.echo(f"no runs in {ctx.store().root}")
        return
    from rich.table import Table

    table = Table("id", "kind", "status", "progress", "result", "age", box=None)
    for r in rows:
        style = STATUS_STYLE.get(r["status"], "white")
        progress = f"{r['done']}/{r['total']}" if r["total"] else ""
        table.add_row(
            r["id"],
            r["kind"] or "?",
            f"[{style}]{r['status']}[/]",
            progress,
            r["headline"] or (r["error"] or "")[:40],
            age(r["created"]),
        )
    console().print(table)


@runs_group.command("show")
@click.argument("run_id")
@click.option("--sample", metavar="ID", help="Show one sample's lines: answers and token ids.")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def show_cmd(ctx: Ctx, run_id: str, sample: str | None, as_json: bool) -> None:
    """Show a run: spec, status, progress, result headline, notes, last error, and its
    per-layer table (or, with --sample, every line of one sample with its answer token ids)."""
    run = ctx.store().get(run_id)
    info = summary(run)
    if as_json:
        emit_json({**info, "spec": run.spec, "result": run.result()})
        return
    spec = run.spec
    c = console()
    style = STATUS_STYLE.get(info["status"], "white")
    c.print(f"[bold]{run.id}[/]  [{style}]{info['status']}[/]  {info['done']}/{info['total']}")
    if run.problem:
        c.print(f"[red]{run.problem}[/]")
    for key in ("kind", "created", "started", "finished", "host", "worker_pid"):
        if key in spec:
            c.print(f"  {key:<11} {spec[key]}")
    profile, task = spec.get("profile", {}), spec.get("task", {})
    c.print(f"  profile     {profile.get('name')} ({profile.get('model')}, {profile.get('dtype')})")
    c.print(f"  task        {task.get('name')}  subset {spec.get('subset', {}).get('hash', '')}")
    c.print(f"  params      {spec.get('params', {})}")
    if info["headline"]:
        c.print(f"  result      {info['headline']}")
    result = run.result() or {}
    kind = kind_of(run.kind)
    for line in _cliff_lines(kind, result):
        c.print(line)
    for note in kind.notes(result) if kind is not None else []:
        c.print(f"  note        {note}")
    if spec.get("error"):
        c.print(f"  [red]error       {spec['error']}[/]")
        if spec.get("hint"):
            c.print(f"  hint        {spec['hint']}")
    c.print(f"  dir         {run.path}")
    if sample is not None:
        _print_sample(run, sample)
        return
    _print_layer_table(kind, result)


def _print_sample(run: Any, sample_id: str) -> None:
    """Every line of one sample: its key, answer text and answer token ids (auditable)."""
    from rich.table import Table

    lines = [r for r in run.samples() if str(r.get("id")) == sample_id]
    if not lines:
        raise CliffscopeError(
            f"no sample {sample_id!r} in {run.id}", hint="ids are in samples.jsonl (`id`)"
        )
    table = Table("key", "answer", "token ids", "score", box=None)
    for r in lines:
        ids = r.get("answer_ids")
        table.add_row(
            str(r.get("key")),
            repr(r.get("prediction", "")),
            " ".join(str(t) for t in ids) if isinstance(ids, list) else "—",
            fmt(r.get("score"), 3) if r.get("score") is not None else "—",
        )
    console().print(table)


def _cliff_lines(kind: Any, result: dict[str, Any]) -> list[str]:
    """The run's own cliff in words, then the partners' cliffs its worker recorded."""
    if kind is None:
        return []
    lines = []
    cliff = kind.cliff(result)
    if isinstance(cliff, dict) and cliff.get("reason"):
        lines.append(f"  cliff       {cliff['reason']}")
    for name in kind.records_partners:
        method = get_kind(name).cliff_method
        recorded = result.get(f"{method.key}_cliff") if method else None
        if isinstance(recorded, dict):
            where = (
                recorded["layer"] if recorded.get("layer") is not None else recorded.get("verdict")
            )
            lines.append(f"  {method.short:<11} {where} ({name} {recorded.get('run')})")
    return lines


def _print_layer_table(kind: Any, result: dict[str, Any]) -> None:
    from cliffscope.cli.run_tables import render

    table = kind.layer_table(result) if kind is not None else None
    if table is not None:
        console().print(f"\n  [bold]{table.title}[/]")
        console().print(render(table))


@runs_group.command("cancel")
@click.argument("run_id")
@pass_ctx
def cancel_cmd(ctx: Ctx, run_id: str) -> None:
    """Ask a run's worker to stop after the current batch (finished samples are kept)."""
    from cliffscope import runops

    run = ctx.store().get(run_id)
    if runops.cancel(run):
        click.echo(f"{run.id}: cancelled")
        return
    click.echo(f"{run.id}: {runops.wait_stopped(run).value}")


@runs_group.command("resume")
@click.argument("run_id")
@click.option(
    "--detach/--follow", default=False, help="Return at once, or show progress (default)."
)
@pass_ctx
def resume_cmd(ctx: Ctx, run_id: str, detach: bool) -> None:
    """Continue a failed, cancelled or interrupted run from its last finished sample."""
    from cliffscope import runops

    run = ctx.store().get(run_id)
    proc = runops.resume(run)
    if detach:
        click.echo(run.id)
        return
    from cliffscope.cli.follow import follow

    raise SystemExit(follow(run, proc))


@runs_group.command("rm")
@click.argument("run_ids", nargs=-1, required=True)
@click.option("--yes", "-y", is_flag=True, help="Do not ask.")
@pass_ctx
def rm_cmd(ctx: Ctx, run_ids: tuple[str, ...], yes: bool) -> None:
    """Delete runs (refuses runs with a live worker)."""
    store = ctx.store()
    runs = [store.get(r) for r in run_ids]
    if not yes:
        click.confirm(f"delete {len(runs)} run(s)?", abort=True)
    for run in runs:
        store.remove(run.id)
        click.echo(f"removed {run.id}")

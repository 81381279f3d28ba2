"""`cliffscope tasks list|show`: what tasks exist, and what their samples look like.

`show` draws the same `--limit/--seed` subset a run would, so a user can check the questions,
answers and images (and the subset hash) before spending GPU time.
"""

from __future__ import annotations

from typing import Any

import click

from cliffscope.cli.context import console, emit_json

_SET_HELP = "Override a task setting, e.g. n_shapes=3, split=test, columns.id=qid (repeatable)."


@click.group("tasks")
def tasks_group() -> None:
    """Built-in and user tasks (datasets + prompts + metrics)."""


def _data_label(spec: Any) -> str:
    if spec.source == "shapes":
        return f"procedural (pool {spec.pool_size})"
    where = spec.data_path or spec.hub_id or "?"
    config = f" [{spec.config_name}]" if spec.config_name else ""
    return f"{where}{config} : {spec.split}"


@tasks_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_command(as_json: bool) -> None:
    """List built-in and user tasks."""
    from cliffscope.tasks.registry import catalogue

    entries = catalogue()
    if as_json:
        rows = []
        for e in entries:
            row: dict[str, Any] = {"name": e.name, "origin": e.origin}
            if e.spec is not None:
                s = e.spec
                row.update(
                    source=s.source,
                    answer_kind=s.answer_kind,
                    metric=s.metric,
                    hub_id=s.hub_id,
                    config_name=s.config_name,
                    split=s.split,
                    data_path=s.data_path,
                    description=s.description,
                )
            else:
                row["error"] = e.error.render() if e.error else "invalid"
            rows.append(row)
        emit_json(rows)
        return
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("name", "source", "kind", "metric", "data", "description"):
        table.add_column(col, overflow="fold")
    for e in entries:
        if e.spec is None:
            what = e.error.what if e.error else "invalid"
            table.add_row(e.name, "", "", "", e.origin, f"[red]invalid: {what}[/red]")
            continue
        s = e.spec
        origin = "" if e.origin == "builtin" else f" [dim]({e.origin})[/dim]"
        table.add_row(
            s.name, s.source, s.answer_kind, s.metric, _data_label(s), s.description + origin
        )
    console().print(table)


@tasks_group.command("show")
@click.argument("name")
@click.option(
    "--limit", type=click.IntRange(min=1), default=5, show_default=True, help="Samples to preview."
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Subset seed (same as a run's)."
)
@click.option(
    "--data", "data_path", type=click.Path(exists=True), help="Local copy of the dataset."
)
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE", help=_SET_HELP)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def show_command(
    name: str,
    limit: int,
    seed: int,
    data_path: str | None,
    settings: tuple[str, ...],
    as_json: bool,
) -> None:
    """Show a task's definition and preview the samples `--limit/--seed` selects."""
    from cliffscope.tasks.registry import get_task, parse_set

    task = get_task(name, data_path=data_path, overrides=parse_set(settings) if settings else None)
    spec = task.spec
    out = console()
    if not as_json:
        _print_spec(out, task)
    subset = task.select(limit, seed)
    samples = [_sample_row(task.get(i)) for i in subset.ids]
    if as_json:
        emit_json(
            {
                "task": task.snapshot(),
                "n_samples": len(task),
                "skipped": task.skipped,
                "subset": subset.to_dict(),
                "samples": samples,
            }
        )
        return
    from rich.table import Table

    out.print(
        f"[bold]samples[/bold] {len(task)} usable"
        + (f", skipped {task.skipped}" if task.skipped else "")
        + f"; subset limit={limit} seed={seed} hash={subset.hash}"
    )
    table = Table(header_style="bold", show_lines=True)
    table.add_column("id", no_wrap=True)
    table.add_column("question" if spec.answer_kind != "caption" else "prompt", overflow="fold")
    table.add_column("answers", overflow="fold")
    table.add_column("image", no_wrap=True)
    for row in samples:
        text = row["question"] or row["prompt"]
        if row.get("choices"):
            text += "\n" + "\n".join(f"{chr(65 + i)}. {c}" for i, c in enumerate(row["choices"]))
        refs = row["references"]
        shown = " | ".join(refs[:5]) + (f" (+{len(refs) - 5})" if len(refs) > 5 else "")
        w, h = row["image_size"]
        table.add_row(row["id"], text, shown, f"{w}x{h} {row['image_mode']}")
    out.print(table)


def _print_spec(out: Any, task: Any) -> None:
    from rich.markup import escape

    s = task.spec
    out.print(f"[bold]{s.name}[/bold]  {escape(s.description)}")
    lines = [
        ("source", _data_label(s) + (f"  (data: {task.data_path})" if task.data_path else "")),
        ("answer kind", s.answer_kind),
        ("metric", s.metric),
        ("max new tokens", str(s.max_new_tokens)),
        ("prompt", repr(s.prompt_template)),
    ]
    if s.source == "shapes":
        lines.append(("knobs", repr(task.config)))
    else:
        cols = ", ".join(f"{k}={v}" for k, v in s.columns.mapped().items())
        lines.append(("columns", cols))
        if s.filters:
            lines.append(("filters", "; ".join(f.describe() for f in s.filters)))
    for key, value in lines:
        out.print(f"  [dim]{key:>14}[/dim]  {escape(value)}")


def _sample_row(sample: Any) -> dict[str, Any]:
    return {
        "id": sample.id,
        "question": sample.question,
        "prompt": sample.prompt,
        "references": sample.references,
        "choices": sample.choices,
        "image_size": list(sample.image.size),
        "image_mode": sample.image.mode,
        "meta": sample.meta,
    }

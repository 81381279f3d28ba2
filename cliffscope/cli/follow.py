"""Watch a worker from the terminal: a progress bar with ETA fed by the run's events.

The CLI never runs a job in its own process; it starts the worker and tails events.jsonl, so a
headless run and a dashboard run are the same thing. Ctrl-C asks the worker to stop cleanly.
"""

from __future__ import annotations

import subprocess
import time

import click

from cliffscope.store.jsonl import JsonlTail
from cliffscope.store.run_dir import EVENTS, RunDir


def follow(run: RunDir, proc: subprocess.Popen | None, poll: float = 0.2) -> int:
    """Show progress until the worker exits; returns its exit code (or 0 if not ours)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from cliffscope.store.progress import RankProgress

    tail = JsonlTail(run.path / EVENTS)
    ranks = RankProgress()
    errors: list[dict] = []
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        transient=False,
    ) as bar:
        task = bar.add_task(run.kind, total=None)
        try:
            while True:
                for event in tail.read_new():
                    kind = event.get("type")
                    if ranks.feed(event) and ranks.per_rank:
                        bar.update(task, completed=ranks.done, total=ranks.total or None)
                    elif kind == "log" and event.get("level") in {"warning", "error"}:
                        bar.console.print(f"[yellow]{event.get('message')}[/]")
                    elif kind == "error":
                        errors.append(event)
                if proc is not None and proc.poll() is not None:
                    for event in tail.read_new():
                        if event.get("type") == "error":
                            errors.append(event)
                    break
                if proc is None and run.status.finished:
                    break
                time.sleep(poll)
        except KeyboardInterrupt:
            bar.console.print(
                "stopping after the current batch (Ctrl-C again to leave it running)…"
            )
            run.request_cancel()
            try:
                if proc is not None:
                    proc.wait()
            except KeyboardInterrupt:
                bar.console.print(f"left running; watch with `cliffscope runs show {run.id}`")
                return 130
    for event in errors:
        click.echo(f"error: {event.get('message')}", err=True)
        if event.get("hint"):
            click.echo(f"  hint: {event['hint']}", err=True)
    status = run.status
    click.echo(f"{run.id}: {status.value}")
    code = proc.returncode if proc is not None else 0
    return 1 if status.value == "failed" else (code or 0)

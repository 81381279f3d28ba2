"""`cliffscope demo build|info`: the embedded demo model (a tiny trained LLaVA)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from cliffscope.cli.context import console


@click.group("demo")
def demo_group() -> None:
    """The built-in demo model that ships with cliffscope."""


def _default_out() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("cliffscope")) / "demo-model"


@demo_group.command("build")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder (default: user data dir).",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--steps", type=int, default=None, help="Training steps (default: the shipped recipe)."
)
@click.option(
    "--install", is_flag=True, help="Overwrite the weights shipped in the package (maintainers)."
)
def build_cmd(out: Path | None, seed: int, steps: int | None, install: bool) -> None:
    """Re-train the demo model from its seed (about 2 minutes on 2 CPU cores)."""
    from rich.progress import (
        BarColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from cliffscope.demo import DEMO_DIR
    from cliffscope.demo.build import build_demo

    target = DEMO_DIR if install else (out or _default_out())
    with Progress(
        TextColumn("[bold]{task.description:<6}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
    ) as bar:
        tasks: dict[str, int] = {}

        def progress(stage: str, done: int, total: int, info: dict) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total, info="")
            text = " ".join(f"{k}={v:.3f}" for k, v in info.items() if isinstance(v, (int, float)))
            bar.update(tasks[stage], completed=done, total=total, info=text)

        manifest = build_demo(target, seed=seed, steps=steps, progress=progress)
    held = manifest.heldout
    console().print(
        f"[bold]demo model[/] -> {target}\n"
        f"  held-out accuracy {held['accuracy']:.3f}, without the image {held['accuracy_no_image']:.3f} "
        f"(chance {held['chance']:.2f}), caption CIDEr {held['caption_cider']:.2f}\n"
        f"  steps {manifest.steps}, seed {manifest.seed}, timings {manifest.timings_s}"
    )
    if not install:
        console().print(f'  use it with a profile whose model = "{target}" (family = "llava")')


@demo_group.command("info")
def info_cmd() -> None:
    """Print the shipped demo model's manifest."""
    from cliffscope.demo import DEMO_DIR

    manifest = DEMO_DIR / "manifest.json"
    if not manifest.exists():
        from cliffscope.errors import NotFoundError

        raise NotFoundError(
            "the demo weights are missing", hint="run `cliffscope demo build --install`"
        )
    click.echo(json.dumps(json.loads(manifest.read_text()), indent=1))

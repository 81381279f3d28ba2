"""`cliffscope demo build|info`: the embedded demo models (tiny trained LLaVAs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from cliffscope.cli.context import console


@click.group("demo")
def demo_group() -> None:
    """The built-in demo model that ships with cliffscope."""


def _default_out(deep: bool) -> Path:
    import platformdirs

    name = "demo-deep-model" if deep else "demo-model"
    return Path(platformdirs.user_data_dir("cliffscope")) / name


def _shipped_dir(deep: bool) -> Path:
    from cliffscope.demo import DEEP_DIR, DEMO_DIR

    return DEEP_DIR if deep else DEMO_DIR


_DEEP = click.option(
    "--deep", is_flag=True, help="The deep demo (demo-deep profile) instead of the 4-layer one."
)


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
@_DEEP
def build_cmd(out: Path | None, seed: int, steps: int | None, install: bool, deep: bool) -> None:
    """Re-train a demo model from its seed (2 CPU cores: about 2 minutes; --deep 14 to 34
    minutes on one thread, and the bits depend on the CPU: docs/demo.md)."""
    from rich.progress import (
        BarColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    target = _shipped_dir(deep) if install else (out or _default_out(deep))
    with Progress(
        TextColumn("[bold]{task.description:<8}"),
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

        manifest = _build(target, seed, steps, deep, progress)
    held = manifest.heldout
    console().print(
        f"[bold]demo model[/] -> {target}\n"
        f"  held-out accuracy {held['accuracy']:.3f}, without the image {held['accuracy_no_image']:.3f} "
        f"(chance {held['chance']:.2f}), caption CIDEr {held['caption_cider']:.2f}\n"
        f"  steps {manifest.steps}, seed {manifest.seed}, timings {manifest.timings_s}"
    )
    if not install:
        console().print(f'  use it with a profile whose model = "{target}" (family = "llava")')


def _build(target: Path, seed: int, steps: int | None, deep: bool, progress: Any) -> Any:
    if not deep:
        from cliffscope.demo.build import build_demo

        return build_demo(target, seed=seed, steps=steps, progress=progress)
    import dataclasses

    from cliffscope.demo.build_deep import build_deep
    from cliffscope.demo.recipe import DeepSettings

    settings = DeepSettings() if steps is None else dataclasses.replace(DeepSettings(), steps=steps)
    return build_deep(target, seed=seed, progress=progress, settings=settings)


@demo_group.command("info")
@_DEEP
def info_cmd(deep: bool) -> None:
    """Print a shipped demo model's manifest."""
    manifest = _shipped_dir(deep) / "manifest.json"
    if not manifest.exists():
        from cliffscope.errors import NotFoundError

        flag = " --deep" if deep else ""
        raise NotFoundError(
            "the demo weights are missing", hint=f"run `cliffscope demo build{flag} --install`"
        )
    click.echo(json.dumps(json.loads(manifest.read_text()), indent=1))

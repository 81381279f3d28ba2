"""`cliffscope profiles list|show|check|new`."""

from __future__ import annotations

import click

from cliffscope.cli.context import Ctx, console, emit_json, pass_ctx
from cliffscope.errors import ValidationError
from cliffscope.profiles import (
    VISION_ATTN_RULE,
    Profile,
    check_all,
    find_profile,
    new_profile_text,
    profile_files,
)

KERNEL_RULE = (
    "Attention kernels: the decoder runs attn_implementation (cliffscope's capture and sweep "
    "kernels stand in for it in the decoder only, while they run); the vision tower always "
    f"runs vision_attn_implementation, unset: {VISION_ATTN_RULE}."
)


@click.group("profiles")
def profiles_group() -> None:
    """Model profiles (TOML files: which checkpoint, dtype, devices)."""


@profiles_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_ctx
def list_cmd(ctx: Ctx, as_json: bool) -> None:
    """List profiles from every profile directory."""
    rows = []
    for file, error in check_all(ctx.profiles_dir):
        row = {"name": file.stem, "path": str(file), "valid": error is None}
        if error is None:
            p = find_profile(str(file)).profile
            row.update(
                family=p.family, model=p.model, dtype=p.dtype, trust_remote_code=p.trust_remote_code
            )
        else:
            row["error"] = error.render()
        rows.append(row)
    if as_json:
        emit_json(rows)
        return
    from rich.table import Table

    table = Table("name", "family", "model", "dtype", "remote code", "file", box=None)
    for r in rows:
        if r["valid"]:
            table.add_row(
                r["name"],
                r["family"],
                r["model"],
                r["dtype"],
                "[red]ON[/]" if r["trust_remote_code"] else "off",
                r["path"],
            )
        else:
            table.add_row(f"[red]{r['name']}[/]", "[red]invalid[/]", "", "", "", r["path"])
    console().print(table)


@profiles_group.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def show_cmd(ctx: Ctx, name: str, as_json: bool) -> None:
    """Show one profile with every field (defaults filled in)."""
    loaded = find_profile(name, ctx.profiles_dir)
    data = loaded.profile.model_dump()
    if as_json:
        emit_json({"path": str(loaded.path), **data})
        return
    from rich.table import Table

    table = Table(box=None, title=str(loaded.path))
    table.add_column("key", no_wrap=True, min_width=max(map(len, Profile.model_fields)))
    table.add_column("value")
    table.add_column("meaning")
    for key, field in Profile.model_fields.items():
        table.add_row(key, loaded.profile.shown(key), field.description or "")
    console().print(table)
    console().print(KERNEL_RULE, highlight=False)


@profiles_group.command("check")
@click.argument("names", nargs=-1)
@pass_ctx
def check_cmd(ctx: Ctx, names: tuple[str, ...]) -> None:
    """Validate profiles (all, or the named ones / files). Exit 1 if any is invalid."""
    results = []
    if names:
        for name in names:
            try:
                loaded = find_profile(name, ctx.profiles_dir)
                results.append((loaded.path, None))
            except ValidationError as exc:
                results.append((name, exc))
    else:
        results = check_all(ctx.profiles_dir)
    bad = 0
    for path, error in results:
        if error is None:
            click.echo(f"ok       {path}")
        else:
            bad += 1
            click.echo(f"INVALID  {path}")
            click.echo("\n".join("         " + line for line in error.render().splitlines()))
    if not results:
        click.echo("no profiles found")
    click.echo(f"{len(results) - bad} valid, {bad} invalid")
    if bad:
        raise SystemExit(1)


@profiles_group.command("new")
@click.argument("name")
@click.option("--model", default="llava-hf/llava-1.5-7b-hf", show_default=True)
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False),
    help="Where to write it (default: user profiles dir).",
)
def new_cmd(name: str, model: str, directory: str | None) -> None:
    """Write a commented profile template."""
    from pathlib import Path

    from cliffscope import paths

    target_dir = Path(directory) if directory else paths.user_profiles_dir()
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / f"{name}.toml"
    if target.exists():
        raise ValidationError(f"{target} already exists", hint="pick another name or edit it")
    target.write_text(new_profile_text(name, model), encoding="utf-8")
    click.echo(str(target))


__all__ = ["profiles_group", "profile_files"]

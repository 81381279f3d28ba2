"""Shared CLI state and helpers: where things live, how errors and JSON are printed."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any

import click

from cliffscope import paths
from cliffscope.store import RunStore


@dataclass
class Ctx:
    runs_dir: str | None = None
    profiles_dir: str | None = None

    def store(self) -> RunStore:
        return RunStore(paths.runs_dir(self.runs_dir))


pass_ctx = click.make_pass_decorator(Ctx, ensure=True)


def emit_json(obj: Any) -> None:
    from cliffscope.store.atomic import json_safe

    click.echo(json.dumps(json_safe(obj), indent=1, ensure_ascii=False, default=str))


def console():
    from rich.console import Console

    return Console(highlight=False, soft_wrap=False, stderr=False, file=sys.stdout)

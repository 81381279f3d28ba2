"""Run ids that sort by time and say what they are."""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timezone

from cliffscope.naming import check_name

_CLEAN = re.compile(r"[^A-Za-z0-9.+-]+")


def _slug(text: str, limit: int = 24) -> str:
    slug = _CLEAN.sub("-", text).strip("-.")
    return (slug or "x")[:limit]


def new_run_id(kind: str, profile: str, task: str, now: datetime | None = None) -> str:
    """`20261124-184500-sweep-demo-shapes-vqa-3f9a` (UTC time first, so names sort by age)."""
    now = now or datetime.now(timezone.utc)
    stamp = now.strftime("%Y%m%d-%H%M%S")
    run_id = f"{stamp}-{_slug(kind)}-{_slug(profile)}-{_slug(task)}-{secrets.token_hex(2)}"
    return check_name(run_id, "run id")

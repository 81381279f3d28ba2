"""The fields every kind's result.json opens with, written by one function so they stay alike."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any


def failed_samples(records: list[dict[str, Any]]) -> int:
    """How many samples have a failed line (a sample counts once, whatever its keys)."""
    return len({r.get("id") for r in records if r.get("error")})


def result_header(
    schema_version: int,
    kind: str,
    *,
    num_layers: int,
    n_samples: int,
    n_failed: int,
    metric: str,
    higher_is_better: bool,
    complete: bool,
    **counts: Any,
) -> dict[str, Any]:
    """schema_version, kind, num_layers, the sample counts (`counts` after n_failed), metric,
    higher_is_better, complete and the update time (UTC, seconds), in that order."""
    return {
        "schema_version": schema_version,
        "kind": kind,
        "num_layers": num_layers,
        "n_samples": n_samples,
        "n_failed": n_failed,
        **counts,
        "metric": metric,
        "higher_is_better": higher_is_better,
        "complete": complete,
        "updated": datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }

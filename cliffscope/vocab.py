"""The words, colours and number formats every front end uses, declared once.

Reports, `cliffscope runs|models` and the dashboard all say a group, a number, a missing
value, an interval level, a run's age and its status the same way because they all call
here. Pure Python: no click, no textual, no torch, no matplotlib.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any

# ---- token groups --------------------------------------------------------------------------

GROUPS: tuple[str, ...] = ("system", "image", "instruction", "output")

#: one colour per group, named the way plotext and rich name it
GROUP_COLOURS = {"system": "blue", "image": "red", "instruction": "green", "output": "orange"}
_MATPLOTLIB = {"blue": "tab:blue", "red": "tab:red", "green": "tab:green", "orange": "tab:orange"}
_RICH = {"blue": "blue", "red": "red", "green": "green", "orange": "dark_orange"}
OTHER_COLOUR = "grey"  # a group outside GROUPS


def group_colour(group: str, medium: str = "plotext") -> str:
    """The group's colour for `medium`: "plotext", "rich" or "matplotlib"."""
    name = GROUP_COLOURS.get(group)
    if medium == "matplotlib":
        return _MATPLOTLIB.get(name or "", "tab:gray")
    if medium == "rich":
        return _RICH.get(name or "", "grey50")
    return name or OTHER_COLOUR


def group_badge(group: str) -> str:
    """Rich style of a group's token cells (`cliffscope models check`)."""
    return f"bold white on {group_colour(group, 'rich')}" if group in GROUP_COLOURS else "dim"


def matplotlib_colour(name: str) -> str:
    """A vocabulary colour name (plotext/rich spelling) as matplotlib spells it."""
    named = {"magenta": "tab:pink", "cyan": "tab:cyan", "yellow": "tab:olive", **_MATPLOTLIB}
    return named.get(name, name)


#: colours of a knockout run's edge curves, in the run's edge order (plotext/rich names)
EDGE_COLOURS = ("red", "green", "cyan", "blue", "magenta", "orange")


def edge_colour(index: int) -> str:
    """The colour of a run's `index`-th knockout edge curve (plots, figures)."""
    return EDGE_COLOURS[index % len(EDGE_COLOURS)]


# ---- numbers -------------------------------------------------------------------------------

MISSING = "—"
MASS_DECIMALS = 4
SCORE_DECIMALS = 3
DEPTH_DECIMALS = 3
PCT_DECIMALS = 1
LATENCY_DECIMALS = 1
#: Significant digits of the per-layer curves and maps runs store (masses, densities, even
#: spreads, knockout probabilities, attention maps): plenty for plots, files stay readable.
STORED_DIGITS = 6


def stored(value: Any) -> float:
    """``value`` as a run file stores it: `STORED_DIGITS` significant digits."""
    return float(f"{value:.{STORED_DIGITS}g}")


def finite(value: Any) -> float | None:
    """A finite float, or None for anything else (missing, null, NaN, text)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def fmt(value: Any, decimals: int = SCORE_DECIMALS) -> str:
    x = finite(value)
    return MISSING if x is None else f"{x:.{decimals}f}"


def fmt_signed(value: Any, decimals: int = SCORE_DECIMALS) -> str:
    x = finite(value)
    return MISSING if x is None else f"{x:+.{decimals}f}"


def fmt_interval(lo: Any, hi: Any, decimals: int = SCORE_DECIMALS, signed: bool = False) -> str:
    """`[0.100, 0.150]` (`[-0.100, +0.150]` with `signed`), or the missing glyph."""
    if finite(lo) is None or finite(hi) is None:
        return MISSING
    one = fmt_signed if signed else fmt
    return f"[{one(lo, decimals)}, {one(hi, decimals)}]"


def fmt_with_interval(mean: Any, lo: Any, hi: Any, decimals: int = SCORE_DECIMALS) -> str:
    """`0.1234 [0.1000, 0.1500]`, or just the mean when the interval is unknown."""
    if finite(mean) is None:
        return MISSING
    interval = fmt_interval(lo, hi, decimals)
    return fmt(mean, decimals) + ("" if interval == MISSING else f" {interval}")


def fmt_pct(value: Any, decimals: int = PCT_DECIMALS) -> str:
    x = finite(value)
    return MISSING if x is None else f"{100 * x:.{decimals}f}%"


def fmt_sci(value: Any) -> str:
    """Per-token densities span orders of magnitude: three significant digits."""
    x = finite(value)
    return MISSING if x is None else f"{x:.2e}"


def fmt_int(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int):
        return MISSING
    return str(value)


def fmt_duration(seconds: float | None) -> str:
    """`1h 02m 03s`, `4m 05s`, `6s` (how long a run took)."""
    if seconds is None or seconds < 0:
        return MISSING
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def fmt_clock(seconds: float | None) -> str:
    """`1:02:03` or `04:05` (a countdown, e.g. the time left)."""
    if seconds is None or seconds < 0:
        return "--:--"
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


# ---- intervals -----------------------------------------------------------------------------

DEFAULT_ALPHA = 0.05


def interval_label(alpha: float | None = None) -> str:
    """`95%` for alpha 0.05: the level every interval of a result is stated at."""
    a = DEFAULT_ALPHA if finite(alpha) is None else float(alpha)  # type: ignore[arg-type]
    return f"{100 * (1 - a):g}%"


def result_alpha(result: dict[str, Any]) -> float:
    """The alpha a result's intervals were computed with (its own record, else the default)."""
    for value in (
        result.get("alpha"),
        ((result.get("cliff") or {}).get("params") or {}).get("alpha"),
    ):
        if finite(value) is not None and 0 < float(value) < 1:
            return float(value)
    return DEFAULT_ALPHA


# ---- runs: time and status -----------------------------------------------------------------

STATUS_STYLE = {
    "running": "bold cyan",
    "done": "green",
    "failed": "bold red",
    "cancelled": "yellow",
    "interrupted": "magenta",
    "queued": "blue",
    "unreadable": "red",
}


def as_datetime(value: object) -> datetime | None:
    """run.toml times come back from TOML as datetimes, from JSON as ISO strings."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


def parse_time(value: object) -> datetime | None:
    """`as_datetime`, read as UTC when it names no zone."""
    when = as_datetime(value)
    return when if when is None or when.tzinfo else when.replace(tzinfo=timezone.utc)


def age(created: object, now: datetime | None = None) -> str:
    """`45s`, `12m`, `3h`, `2d` since `created` (`?` when unknown); pass `now` to hold the clock."""
    when = parse_time(created)
    if when is None:
        return "?"
    seconds = max(0.0, ((now or datetime.now(timezone.utc)) - when).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def iso(value: Any) -> str | None:
    """A run.toml time as ISO text with Z."""
    when = as_datetime(value)
    if when is None:
        return None if value is None else str(value)
    return when.isoformat().replace("+00:00", "Z")

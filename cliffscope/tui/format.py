"""Short text for table cells: ages, progress bars, numbers (presentation only, no science)."""

from __future__ import annotations

from datetime import datetime, timezone

from rich.text import Text

STATUS_STYLE = {
    "running": "bold cyan",
    "done": "green",
    "failed": "bold red",
    "cancelled": "yellow",
    "interrupted": "magenta",
    "queued": "blue",
    "unreadable": "red",
}


def parse_time(value: object) -> datetime | None:
    """run.toml times come back from TOML as datetimes, from JSON as ISO strings."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    return None


def age(created: datetime | None, now: datetime) -> str:
    """`45s`, `12m`, `3h`, `2d`: the clock is passed in so snapshots stay still."""
    if created is None:
        return "?"
    seconds = max(0.0, (now - created).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def duration(seconds: float | None) -> str:
    if seconds is None or seconds < 0:
        return "--:--"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLE.get(status, ""))


def progress_cell(done: int, total: int, width: int = 14) -> Text:
    """A bar plus `done/total` (or a percentage when that does not fit) in `width` cells."""
    if total <= 0:
        return Text("")
    frac = min(max(done / total, 0.0), 1.0)
    bar_width = max(2, min(width - 6, 8))
    count = f"{done}/{total}"
    if bar_width + 1 + len(count) > width:
        count = f"{int(100 * frac)}%"
    filled = int(round(frac * bar_width))
    bar = Text("█" * filled, style="green" if frac >= 1 else "cyan")
    bar.append("░" * (bar_width - filled), style="grey42")
    bar.append(f" {count}")
    return bar


def num(value: object, digits: int = 3) -> str:
    """A float with fixed digits; anything else (None, missing) as an en dash."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "–"
    return f"{value:.{digits}f}"


def signed(value: object, digits: int = 3) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "–"
    return f"{value:+.{digits}f}"


def percent(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "–"
    return f"{100 * value:.0f}%"


def clip(text: str, width: int) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"

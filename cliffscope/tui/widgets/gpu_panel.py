"""Memory and utilisation per GPU; hidden when NVML is not available."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from cliffscope.tui.gpu import GpuStat

GIB = 1024**3


def _bar(frac: float, width: int = 10) -> Text:
    filled = int(round(min(max(frac, 0.0), 1.0) * width))
    style = "red" if frac > 0.9 else "yellow" if frac > 0.7 else "green"
    text = Text("█" * filled, style=style)
    text.append("░" * (width - filled), style="grey42")
    return text


class GpuPanel(Static):
    DEFAULT_CSS = "GpuPanel { height: auto; max-height: 6; display: none; }"

    def show(self, gpus: tuple[GpuStat, ...] | None) -> None:
        self.display = bool(gpus)
        if not gpus:
            return
        table = Table.grid(padding=(0, 1))
        for gpu in gpus:
            line = Text(f"GPU{gpu.index} ", style="bold")
            line.append(f"{gpu.name[:18]:<18} mem ")
            line.append_text(_bar(gpu.mem_frac))
            line.append(f" {gpu.mem_used / GIB:5.1f}/{gpu.mem_total / GIB:.0f} GiB  util ")
            line.append_text(_bar(gpu.util / 100))
            line.append(f" {gpu.util:3d}%")
            table.add_row(line)
        self.update(table)

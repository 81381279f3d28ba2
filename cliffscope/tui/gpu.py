"""GPU memory and utilisation from NVML (nvidia-ml-py), read from the poller thread.

NVML is optional: without the package, the library or a GPU, `read()` returns None once and
the dashboard hides the panel for good (no retry storm on every poll).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class GpuStat:
    index: int
    name: str
    mem_used: int  # bytes
    mem_total: int  # bytes
    util: int  # percent

    @property
    def mem_frac(self) -> float:
        return self.mem_used / self.mem_total if self.mem_total else 0.0


class NvmlProbe:
    """Reads every visible GPU; None when NVML is unusable here."""

    def __init__(self) -> None:
        self._nvml: Any = None
        self._failed = False

    def _init(self) -> Any:
        if self._nvml is None and not self._failed:
            try:
                import pynvml

                pynvml.nvmlInit()
                self._nvml = pynvml
            except Exception:  # noqa: BLE001 - missing package, library or driver alike
                self._failed = True
        return self._nvml

    def read(self) -> tuple[GpuStat, ...] | None:
        nvml = self._init()
        if nvml is None:
            return None
        try:
            stats = []
            for index in range(nvml.nvmlDeviceGetCount()):
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                name = nvml.nvmlDeviceGetName(handle)
                memory = nvml.nvmlDeviceGetMemoryInfo(handle)
                util = nvml.nvmlDeviceGetUtilizationRates(handle)
                stats.append(
                    GpuStat(
                        index=index,
                        name=name.decode() if isinstance(name, bytes) else str(name),
                        mem_used=int(memory.used),
                        mem_total=int(memory.total),
                        util=int(util.gpu),
                    )
                )
        except Exception:  # noqa: BLE001 - a GPU fell off the bus: hide rather than crash
            return None
        return tuple(stats) or None

    def close(self) -> None:
        if self._nvml is not None:
            with contextlib.suppress(Exception):
                self._nvml.nvmlShutdown()
            self._nvml = None

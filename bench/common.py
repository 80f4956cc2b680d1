"""Helpers every benchmark uses: percentiles and a process's own peak memory."""

from __future__ import annotations

import contextlib
import math
import resource
from collections.abc import Sequence
from pathlib import Path


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile: the smallest value with ``pct`` % of the samples at or below."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def peak_rss_kb(pid: int | str = "self") -> int:
    """Peak RSS of a process in KiB. On Linux ``ru_maxrss`` survives exec, so a child would
    report its parent's peak; ``VmHWM`` belongs to the running program alone."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss if pid == "self" else 0

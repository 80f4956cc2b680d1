"""Helpers every benchmark uses: percentiles and a process's own peak memory."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import resource
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


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


async def engine_process(*args: str, cwd: Path) -> dict[str, Any]:
    """Run ``python -m ARGS`` (an engine in a process of its own, so it gets a core) and
    return the one JSON line it prints; RuntimeError if it fails."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", *args, cwd=cwd, env={**os.environ}, stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    line = await proc.stdout.readline()
    code = await proc.wait()
    if not line or code != 0:
        raise RuntimeError(f"the engine process ({' '.join(args)}) failed (exit code {code})")
    result: dict[str, Any] = json.loads(line)
    return result

"""Resident-memory readings for the benchmarks (Linux /proc; no extra package).

`rss_bytes()` is the current resident set; `reset_peak()` + `peak_bytes()` bracket one stage:
writing "5" to /proc/self/clear_refs resets the kernel's high-water mark (VmHWM) to the current
RSS, so the peak read afterwards belongs to that stage alone, even when several models share the
process (the A-B benchmarks keep both sides resident).
"""

from __future__ import annotations

import resource
from pathlib import Path

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kib(field: str) -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_bytes() -> int:
    """Current resident set size (0 when /proc is unavailable)."""
    kib = _status_kib("VmRSS")
    return 0 if kib is None else kib * 1024


def reset_peak() -> bool:
    """Reset the process's peak RSS to its current RSS; False where the kernel does not allow it."""
    try:
        _CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


def peak_bytes() -> int:
    """Peak RSS since the last `reset_peak()` (since process start without one)."""
    kib = _status_kib("VmHWM")
    if kib is None:  # no /proc: getrusage's lifetime peak (KiB on Linux)
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib * 1024


def gib(n: float) -> float:
    return n / 1024**3

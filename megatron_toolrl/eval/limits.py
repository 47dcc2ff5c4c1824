"""Parse bounds used when scoring recorded outputs."""

from __future__ import annotations

from megatron_toolrl.toolcall.types import ParseLimits

EVAL_LIMITS = ParseLimits(max_seconds=1.0)
"""The parser's size bounds unchanged, its wall-clock budget raised from 10 ms to 1 s (our choice): an
offline evaluation must give the same score on a busy machine, and 1 s still stops a runaway parse."""

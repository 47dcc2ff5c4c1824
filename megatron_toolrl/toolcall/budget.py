"""Running count of values and elapsed time during one parse, against `ParseLimits`."""

from __future__ import annotations

import time

from megatron_toolrl.toolcall.errors import ParseFailure
from megatron_toolrl.toolcall.types import ParseLimits


def _clock() -> float:
    # CPU time of this thread, not wall time: on a busy node (rollout workers, other ranks) wall
    # time would turn a correct answer into a timeout depending on the scheduler.
    return time.thread_time()


class Budget:
    """What one parse has spent so far: values (`max_nodes`), tokens (`max_tokens`), time (`max_seconds`)."""

    def __init__(self, limits: ParseLimits, start: float | None = None):
        """`start`: a `time.thread_time()` reading taken when the parse began (default: now)."""
        self.limits = limits
        self.max_nodes = limits.max_nodes
        self.deadline = (_clock() if start is None else start) + limits.max_seconds
        self.nodes = 0
        self.tokens = 0
        """Tokens measured by the pre-scans so far (several `<tool_call>` blocks share `max_tokens`)."""

    def check_time(self, stage: str) -> None:
        if _clock() > self.deadline:
            raise ParseFailure(f"time budget of {self.limits.max_seconds * 1e3:.1f} ms exceeded ({stage})")

    def node(self) -> None:
        """Count one decoded value (scalar, container or call). The walks between two time checks
        are short: the pre-scan has bounded the values to about `max_tokens`."""
        self.nodes += 1
        if self.nodes > self.max_nodes:
            raise ParseFailure(f"more than max_nodes={self.max_nodes} values")

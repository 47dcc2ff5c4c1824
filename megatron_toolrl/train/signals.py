"""Preemption: SIGTERM / SIGUSR1 ask the run to checkpoint at the next step boundary and exit.

SLURM sends `--signal=B:USR1@120` (or SIGTERM at the time limit / on `scancel`); the handler
only sets a flag, because checkpointing from inside a signal handler could interleave with a
collective. The loop checks the flag after each step; all ranks agree via an all-reduce so that
every rank stops at the same step.
"""

from __future__ import annotations

import signal
from types import FrameType

EXIT_CODE_PREEMPTED = 124
"""Exit code of a run that saved a checkpoint because it was asked to stop; SLURM scripts requeue on it."""


class StopRequest:
    def __init__(self, signals: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGUSR1)):
        self.requested: signal.Signals | None = None
        self._previous = {}
        for sig in signals:
            self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.requested = signal.Signals(signum)

    def should_stop(self) -> bool:
        """True on every rank when any rank was signalled."""
        import torch
        import torch.distributed as dist

        flag = torch.tensor([1 if self.requested is not None else 0])
        if dist.is_initialized() and dist.get_world_size() > 1:
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

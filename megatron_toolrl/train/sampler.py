"""Which prompts each step trains on: a seeded epoch order plus a re-queue for hard prompts.

The order of epoch e is a permutation drawn from `Random(seed, e)`, so the state that resumes it
exactly is three small values (epoch, position, the re-queue), saved in the checkpoint.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class TaskSampler:
    num_tasks: int
    prompts_per_step: int
    seed: int
    epoch: int = 0
    position: int = 0
    requeued: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.num_tasks < 1:
            raise ValueError("the training set is empty")
        if self.prompts_per_step < 1:
            raise ValueError("prompts_per_step must be >= 1")

    def _order(self, epoch: int) -> list[int]:
        order = list(range(self.num_tasks))
        random.Random(self.seed * 1_000_003 + epoch).shuffle(order)
        return order

    def requeue(self, index: int) -> None:
        """Train `index` again in an upcoming batch (once, however often it is requeued)."""
        if index not in self.requeued:
            self.requeued.append(index)

    def next_batch(self, skip: Callable[[int], bool] = lambda i: False) -> list[int]:
        """`prompts_per_step` distinct task indices; `skip(i)` excludes retired prompts.

        Re-queued prompts come first. Raises when every prompt is skipped (nothing left to train).
        """
        batch: list[int] = []
        while self.requeued and len(batch) < self.prompts_per_step:
            index = self.requeued.pop(0)
            if not skip(index) and index not in batch:
                batch.append(index)
        scanned_without_progress = 0
        order = self._order(self.epoch)
        while len(batch) < self.prompts_per_step:
            if self.position >= self.num_tasks:
                self.epoch += 1
                self.position = 0
                order = self._order(self.epoch)
            index = order[self.position]
            self.position += 1
            if skip(index) or index in batch:
                scanned_without_progress += 1
                if scanned_without_progress > 2 * self.num_tasks:
                    if batch:
                        break
                    raise RuntimeError("every training prompt is retired or excluded: nothing left to sample")
                continue
            scanned_without_progress = 0
            batch.append(index)
        return batch

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position, "requeued": list(self.requeued), "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        if state["seed"] != self.seed:
            raise ValueError(f"sampler state was saved with seed {state['seed']}, this run uses {self.seed}")
        self.epoch, self.position, self.requeued = state["epoch"], state["position"], list(state["requeued"])

"""What a rollout engine takes and returns: sampling settings, completions, sync statistics.

The trainer sees engines only through `RolloutEngine`; the in-process engine (`inproc.py`) and the
vLLM-server engine (`server.py`) both satisfy it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import torch

from megatron_toolrl.errors import ConfigError

FinishReason = Literal["stop", "length"]
"""Why a completion ended: an EOS token or stop string ("stop") or `max_tokens` ("length")."""

Bucket = list[tuple[str, torch.Tensor]]
"""A group of full (unsharded) tensors under their HF names, as the bridge's export yields them."""


@dataclass(frozen=True)
class SamplingSettings:
    """How each prompt is sampled."""

    n: int = 1
    """Completions per prompt (the GRPO group size)."""
    temperature: float = 1.0
    """Softmax temperature; 0 is greedy. Default 1: GRPO samples from the policy itself."""
    top_p: float = 1.0
    """Nucleus mass in (0, 1]; 1 disables it."""
    top_k: int | None = None
    """Keep only the k most likely tokens; None disables it."""
    max_tokens: int = 256
    """Most new tokens per completion."""
    stop: tuple[str, ...] = ()
    """Strings that end a completion (not included in its text)."""
    seed: int | None = None
    """Base seed. Prompt i is sampled with seed + i, so equal prompts in one batch still get
    different samples and a retried prompt gets the same ones. None: engine randomness."""
    logprobs: bool = True
    """Return the log-probability of every sampled token (from the raw model logits, i.e. before
    temperature/top-p, as the trainer computes them)."""

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ConfigError(f"must be >= 1, got {self.n}", field="n")
        if self.temperature < 0:
            raise ConfigError(f"must be >= 0, got {self.temperature}", field="temperature")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"must be in (0, 1], got {self.top_p}", field="top_p")
        if self.top_k is not None and self.top_k < 1:
            raise ConfigError(f"must be >= 1 or None, got {self.top_k}", field="top_k")
        if self.max_tokens < 1:
            raise ConfigError(f"must be >= 1, got {self.max_tokens}", field="max_tokens")
        if isinstance(self.stop, str) or not all(isinstance(s, str) and s for s in self.stop):
            raise ConfigError("must be a tuple of non-empty strings", field="stop")

    def seed_for(self, prompt_index: int) -> int | None:
        return None if self.seed is None else self.seed + prompt_index


@dataclass(frozen=True)
class Completion:
    """One sampled continuation of one prompt."""

    prompt_index: int
    """Position of the prompt in the `generate` call."""
    sample_index: int
    """0 .. n-1 within the prompt's group."""
    text: str
    """Decoded completion (special tokens skipped, stop string excluded)."""
    token_ids: list[int]
    """Sampled token ids, (T,)."""
    logprobs: list[float] | None
    """Log-probability of each sampled token, (T,); None when not requested."""
    finish_reason: FinishReason
    prompt_token_ids: list[int]
    """The prompt as the engine tokenized it, (P,)."""
    stop_reason: int | str | None = None
    """The stop string or token id that ended the completion; None for EOS or length."""

    def __post_init__(self) -> None:
        if self.logprobs is not None and len(self.logprobs) != len(self.token_ids):
            raise ValueError(
                f"completion ({self.prompt_index}, {self.sample_index}): {len(self.logprobs)} logprobs "
                f"for {len(self.token_ids)} tokens"
            )


@dataclass(frozen=True)
class LogprobAgreement:
    """Engine vs reference log-probabilities of the same probe tokens."""

    max_abs_diff: float
    mean_abs_diff: float
    num_tokens: int
    engine: str
    """Which engine (server URL or "inproc") was checked."""


@dataclass(frozen=True)
class SyncStats:
    """One weight push: what was sent, how long it took, and the probe check after it."""

    num_tensors: int
    num_bytes: int
    seconds: float
    """Wall time from the first bucket to every engine holding the new weights (prefix caches reset)."""
    transport: Literal["inproc", "shm", "dist"]
    num_engines: int
    agreements: tuple[LogprobAgreement, ...] = ()
    """One per engine when a probe was given, else empty."""
    verify_seconds: float = 0.0

    @property
    def max_abs_diff(self) -> float | None:
        """Largest max |diff| over the engines; None without a probe."""
        return max((a.max_abs_diff for a in self.agreements), default=None)

    @property
    def mean_abs_diff(self) -> float | None:
        """Mean |diff| of the worst engine; None without a probe."""
        return max((a.mean_abs_diff for a in self.agreements), default=None)


@dataclass(frozen=True)
class ProbeBatch:
    """Fixed token sequences and the trainer's log-probabilities of them, checked after every push.

    `reference_logprobs[i][j]` is log p(token_ids[i][j+1] | token_ids[i][:j+1]) under the weights
    being pushed, so each reference row is one shorter than its sequence.
    """

    token_ids: list[list[int]]
    reference_logprobs: list[list[float]]

    def __post_init__(self) -> None:
        if not self.token_ids or len(self.token_ids) != len(self.reference_logprobs):
            raise ValueError(
                f"probe needs one reference row per sequence: {len(self.token_ids)} sequences, "
                f"{len(self.reference_logprobs)} reference rows"
            )
        for i, (ids, ref) in enumerate(zip(self.token_ids, self.reference_logprobs)):
            if len(ids) < 2 or len(ref) != len(ids) - 1:
                raise ValueError(f"probe sequence {i}: {len(ids)} tokens needs {len(ids) - 1} reference logprobs, got {len(ref)}")


class RolloutEngine(Protocol):
    """A set of inference engines that sample completions and take weight pushes."""

    def generate(self, prompts: Sequence[str] | Sequence[Sequence[int]], sampling: SamplingSettings) -> list[list[Completion]]:
        """Sample `sampling.n` completions per prompt (text or token ids); result[i][k] is sample k of prompt i."""
        ...

    def update_weights(self, buckets: Iterable[Bucket], probe: ProbeBatch | None = None) -> SyncStats:
        """Load HF-named full tensors into every engine; with a probe, check the engines against it
        and raise `SyncMismatchError` beyond tolerance."""
        ...

    def prompt_logprobs(self, token_ids: Sequence[Sequence[int]]) -> list[list[float]]:
        """log p(t[j+1] | t[:j+1]) for every sequence t, computed by the engine, (L-1,) each."""
        ...

    def health(self) -> bool:
        """True when every engine answers."""
        ...

    def close(self) -> None:
        """Stop every engine and free what the engine object holds."""
        ...


def drain(buckets: Iterator[Bucket]) -> None:
    """Consume what is left of a bucket stream.

    The bridge's export is a collective: every trainer rank iterates it in step, so an engine
    that stops consuming after an error must still run it to the end, or the other ranks hang.
    """
    for _ in buckets:
        pass


def validate_prompts(prompts: Sequence[str] | Sequence[Sequence[int]]) -> list[str] | list[list[int]]:
    """Prompts as a list of all strings or all token-id lists; raise ValueError naming the bad index."""
    if isinstance(prompts, str):
        raise ValueError("prompts must be a list of prompts, got one string")
    items = list(prompts)
    if not items:
        return []
    if all(isinstance(p, str) for p in items):
        for i, p in enumerate(items):
            if not p:
                raise ValueError(f"prompt {i} is empty")
        return items  # type: ignore[return-value]
    out: list[list[int]] = []
    for i, p in enumerate(items):
        if isinstance(p, str):
            raise ValueError(f"prompt {i} is a string but others are token ids: use one kind per call")
        ids = list(p)
        if not ids or not all(isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in ids):
            raise ValueError(f"prompt {i} must be a non-empty list of token ids >= 0")
        out.append(ids)
    return out

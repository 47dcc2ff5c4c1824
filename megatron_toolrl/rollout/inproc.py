"""The colocated engine: one vllm.LLM inside the trainer process.

With VLLM_ENABLE_V1_MULTIPROCESSING=0 vLLM runs its engine core and its single worker in this
process (InprocClient + UniProcExecutor), so `collective_rpc` hands Python objects to the worker
by reference: a weight push streams the trainer's tensors straight into `reload_weights` with no
file and no serialization. Meant for single-process trainers (CPU development, small models);
a crash of the engine is a crash of the trainer, so there is no restart logic here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Sequence

import torch

from megatron_toolrl.errors import ConfigError
from megatron_toolrl.rollout.config import RolloutConfig
from megatron_toolrl.rollout.engine_env import WORKER_EXTENSION, engine_env, patched_environ
from megatron_toolrl.rollout.types import (
    Bucket,
    Completion,
    ProbeBatch,
    SamplingSettings,
    SyncStats,
    drain,
    validate_prompts,
)
from megatron_toolrl.rollout.verify import check_probe

log = logging.getLogger(__name__)


class InprocEngine:
    """A `RolloutEngine` backed by an in-process vllm.LLM."""

    name = "inproc"

    def __init__(self, cfg: RolloutConfig):
        if cfg.mode != "inproc":
            raise ConfigError(f"InprocEngine needs mode 'inproc', got {cfg.mode!r}", field="mode")
        self.cfg = cfg
        from vllm import LLM
        from vllm.v1.engine.core_client import InprocClient

        # vLLM's CPU worker replaces torch.set_num_threads with a no-op for the whole process
        # (it pins its OpenMP threads), and its start-up drops torch to 1 thread "for serving".
        # In-process both would silently change the trainer, so both are put back after start-up.
        set_num_threads, num_threads = torch.set_num_threads, torch.get_num_threads()
        started = time.perf_counter()
        try:
            with patched_environ({**engine_env(cfg), "VLLM_ENABLE_V1_MULTIPROCESSING": "0"}):
                self._llm = LLM(
                    model=cfg.hf_dir,
                    dtype=cfg.dtype,
                    max_model_len=cfg.max_model_len,
                    enforce_eager=cfg.enforce_eager,
                    enable_prefix_caching=cfg.enable_prefix_caching,
                    seed=cfg.seed,
                    gpu_memory_utilization=cfg.gpu_memory_utilization,
                    worker_extension_cls=WORKER_EXTENSION,
                    # Sampling defaults from the model's generation_config.json would silently
                    # apply to every request (repetition penalty, top-k ...): settings are ours.
                    generation_config="vllm",
                )
        finally:
            torch.set_num_threads = set_num_threads
            torch.set_num_threads(num_threads)
        if not isinstance(self._llm.llm_engine.engine_core, InprocClient):
            # E.g. vLLM's env cache froze VLLM_ENABLE_V1_MULTIPROCESSING=1 earlier in this process.
            raise RuntimeError(
                "vLLM started a separate engine process although VLLM_ENABLE_V1_MULTIPROCESSING=0 was set; "
                "weights could not be passed by reference. Create the in-process engine before any other vLLM engine."
            )
        log.info("in-process vLLM engine ready in %.1f s", time.perf_counter() - started)

    # ----- RolloutEngine -----

    def generate(self, prompts: Sequence[str] | Sequence[Sequence[int]], sampling: SamplingSettings) -> list[list[Completion]]:
        from vllm.inputs import TokensPrompt

        items = validate_prompts(prompts)
        if not items:
            return []
        inputs = [p if isinstance(p, str) else TokensPrompt(prompt_token_ids=p) for p in items]
        params = [_sampling_params(sampling, i) for i in range(len(items))]
        outputs = self._llm.generate(inputs, params, use_tqdm=False)
        return [_completions(i, out, sampling) for i, out in enumerate(outputs)]

    def update_weights(self, buckets: Iterable[Bucket], probe: ProbeBatch | None = None) -> SyncStats:
        started = time.perf_counter()
        counts = [0, 0]  # tensors, bytes
        source = iter(buckets)

        def stream() -> Iterator[tuple[str, torch.Tensor]]:
            for bucket in source:
                for name, tensor in bucket:
                    counts[0] += 1
                    counts[1] += tensor.numel() * tensor.element_size()
                    yield name, tensor

        try:
            self._llm.collective_rpc("mtrl_load_tensors", args=(stream(),))
        except Exception:
            drain(source)
            raise
        # KV blocks computed with the old weights would otherwise be reused for shared prefixes.
        if not self._llm.reset_prefix_cache():
            raise RuntimeError("vLLM refused to reset its prefix cache after a weight push (requests still running?)")
        seconds = time.perf_counter() - started
        agreements, verify_seconds = (), 0.0
        if probe is not None:
            t0 = time.perf_counter()
            agreements = (check_probe(self.name, self.prompt_logprobs(probe.token_ids), probe, self.cfg.tolerance),)
            verify_seconds = time.perf_counter() - t0
        return SyncStats(
            num_tensors=counts[0], num_bytes=counts[1], seconds=seconds, transport="inproc",
            num_engines=1, agreements=agreements, verify_seconds=verify_seconds,
        )

    def prompt_logprobs(self, token_ids: Sequence[Sequence[int]]) -> list[list[float]]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        seqs = [list(t) for t in token_ids]
        for i, ids in enumerate(seqs):
            if len(ids) < 2:
                raise ValueError(f"sequence {i}: prompt logprobs need at least 2 tokens, got {len(ids)}")
        params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0, detokenize=False)
        outputs = self._llm.generate([TokensPrompt(prompt_token_ids=ids) for ids in seqs], params, use_tqdm=False)
        # Position 0 has no logprob; the dict at position j holds the actual prompt token j.
        return [[out.prompt_logprobs[j][ids[j]].logprob for j in range(1, len(ids))] for out, ids in zip(outputs, seqs)]

    def health(self) -> bool:
        try:
            self._llm.collective_rpc("check_health")
        except Exception as err:  # noqa: BLE001 - any failure means "not healthy"
            log.warning("in-process engine unhealthy: %s", err)
            return False
        return True

    def close(self) -> None:
        """Shut the engine down. vLLM's shutdown also destroys torch.distributed's default group in
        this process (its own or, if it was already initialized, the trainer's): close last."""
        llm = self.__dict__.pop("_llm", None)
        if llm is not None:
            llm.llm_engine.engine_core.shutdown()

    def __enter__(self) -> "InprocEngine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _sampling_params(s: SamplingSettings, prompt_index: int):  # -> vllm.SamplingParams
    from vllm import SamplingParams

    return SamplingParams(
        n=s.n,
        temperature=s.temperature,
        top_p=s.top_p,
        top_k=s.top_k or 0,
        max_tokens=s.max_tokens,
        stop=list(s.stop) or None,
        seed=s.seed_for(prompt_index),
        logprobs=0 if s.logprobs else None,
    )


def _completions(prompt_index: int, out, s: SamplingSettings) -> list[Completion]:  # out: vllm.RequestOutput
    samples = sorted(out.outputs, key=lambda c: c.index)
    if [c.index for c in samples] != list(range(s.n)):
        raise RuntimeError(f"prompt {prompt_index}: engine returned samples {[c.index for c in samples]}, expected 0..{s.n - 1}")
    result = []
    for c in samples:
        if c.finish_reason not in ("stop", "length"):
            raise RuntimeError(f"prompt {prompt_index} sample {c.index}: unfinished completion ({c.finish_reason!r})")
        ids = list(c.token_ids)
        result.append(
            Completion(
                prompt_index=prompt_index,
                sample_index=c.index,
                text=c.text,
                token_ids=ids,
                logprobs=[c.logprobs[j][t].logprob for j, t in enumerate(ids)] if s.logprobs else None,
                finish_reason=c.finish_reason,
                prompt_token_ids=list(out.prompt_token_ids),
                stop_reason=c.stop_reason,
            )
        )
    return result

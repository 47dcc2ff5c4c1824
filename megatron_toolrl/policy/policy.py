"""MegatronPolicy: the trainable policy of one rank (model chunks, DDP, optimizer, LR schedule).

Every method is collective over the world: all ranks call it with their own data-parallel share
of the batch. Forward and backward go through megatron-core's `get_forward_backward_func`, so
the same code runs TP, PP (1F1B, and interleaved with virtual pipeline stages) and DP.

Loss normalisation (NeMo-RL style): `train_step` first sums the loss mask over the whole global
batch (all micro-batches, all DP ranks) into `TokenCounts`, and hands those counts to the loss
function with every micro-batch. A loss written as sum(per-token terms) / counts.tokens is then
independent of how the batch is split; megatron is told not to rescale it (see
policy.optimizer.wrap_with_ddp), so the gradients are exactly those of the global loss.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
import torch.distributed as dist
from torch.distributed import ProcessGroup

from megatron_toolrl import platform
from megatron_toolrl.errors import CheckpointError
from megatron_toolrl.models import ArchSpec, ModelConfig, build_model_chunks, torch_dtype
from megatron_toolrl.policy.batch import TokenBatch, TokenCounts, local_token_counts
from megatron_toolrl.policy.checkpoint import (
    CheckpointState,
    load_checkpoint_dir,
    read_checkpoint_state,
    restore_rng,
    save_checkpoint_dir,
)
from megatron_toolrl.policy.logprobs import next_token_entropy, next_token_logprobs
from megatron_toolrl.policy.lr_schedule import LRScheduler
from megatron_toolrl.policy.optimizer import OptimizerSettings, build_optimizer, wrap_with_ddp
from megatron_toolrl.policy.optimizer_state import allocate_distributed_optimizer_state, load_optimizer_state

LossFn = Callable[[torch.Tensor, torch.Tensor, TokenBatch, TokenCounts], tuple[torch.Tensor, dict[str, torch.Tensor]]]
"""loss_fn(logprobs (b, T), entropy (b, T), micro_batch, global_counts) -> (loss, metrics).

`logprobs` carry gradients; `entropy` is detached (a metric). Both are token-aligned (see
policy.batch); with `MegatronPolicy.response_logits_only` both are 0 before the micro-batch's
first loss-mask position, where the LM head is skipped. The loss must be this micro-batch's share of the global loss, i.e. normalised by
`global_counts`, not by the micro-batch's own token count. Metrics are scalar tensors that are
*summed* over micro-batches and DP ranks, so they too should be shares of a global value.
"""

# Metric names the policy itself reports; a loss function may not reuse them.
_RESERVED_METRICS = ("loss", "entropy")
# How optimizer state is laid out on disk by DistributedOptimizer: the one format of megatron-core
# 0.16.1 that reshards over TP, PP and DP (gathers the state on DP rank 0 when saving).
_DIST_OPT_CKPT_FORMAT = "fully_reshardable"


@dataclass(frozen=True)
class PolicyGroups:
    """This rank's process groups and pipeline position, read once from megatron's parallel state."""

    tp: ProcessGroup
    pp: ProcessGroup
    dp: ProcessGroup
    tp_size: int
    pp_size: int
    dp_size: int
    dp_rank: int
    is_last_stage: bool
    last_stage_rank: int
    """Global rank of the last pipeline stage of this rank's pipeline (where logits live)."""

    @classmethod
    def from_parallel_state(cls) -> "PolicyGroups":
        from megatron.core import parallel_state as ps

        return cls(
            tp=ps.get_tensor_model_parallel_group(),
            pp=ps.get_pipeline_model_parallel_group(),
            dp=ps.get_data_parallel_group(),
            tp_size=ps.get_tensor_model_parallel_world_size(),
            pp_size=ps.get_pipeline_model_parallel_world_size(),
            dp_size=ps.get_data_parallel_world_size(),
            dp_rank=ps.get_data_parallel_rank(),
            is_last_stage=ps.is_pipeline_last_stage(ignore_virtual=True),
            last_stage_rank=ps.get_pipeline_model_parallel_last_rank(),
        )


@dataclass(frozen=True)
class StepResult:
    """What one optimizer step reports; identical on every rank."""

    loss: float
    """The global loss (sum of the micro-batch losses over all micro-batches and DP ranks)."""
    grad_norm: float
    """Global L2 norm of the gradient before clipping (NaN when megatron computed none:
    a skipped update, or clip_grad = 0)."""
    update_successful: bool
    """False when the optimizer skipped the update (fp16 overflow); the LR schedule then holds."""
    lr: float
    """Learning rate used for this update."""
    metrics: dict[str, float] = field(default_factory=dict)
    """Summed loss-function metrics, plus 'entropy' (mean over masked tokens)."""


class MegatronPolicy:
    """Model chunks + megatron DDP + megatron optimizer + LR scheduler, for one rank.

    megatron's parallel state must be initialised first (megatron_toolrl.parallel.init_parallel);
    the weights are initialised from the RNG seeded there (use_cpu_initialization on CPU draws
    the full weight and splits it, so every TP layout of the same seed gets the same model).
    """

    def __init__(
        self,
        arch: ArchSpec,
        model_cfg: ModelConfig,
        optim: OptimizerSettings,
        *,
        micro_batch_size: int,
        temperature: float = 1.0,
        initial_weights: "str | Path | Mapping[str, torch.Tensor] | None" = None,
        response_logits_only: bool = True,
    ) -> None:
        """Build this rank's model chunks (after `parallel.init_parallel`), load `initial_weights`
        (an HF directory or HF-named full tensors) through the bridge when given, then wrap them
        in megatron DDP and build the optimizer and LR schedule.

        `response_logits_only`: run the LM head (and the log-softmax after it) only from each
        micro-batch's first loss-mask position on, in `train_step` and in
        `compute_logprobs(masked_only=True)`. A GRPO sequence is mostly prompt, and the head over
        a 49k-152k vocabulary is a large share of the step (bench/profile_grpo_update.py).
        Ignored under sequence parallelism, where the head's input is split over the sequence."""
        if micro_batch_size < 1:
            raise ValueError(f"micro_batch_size must be >= 1, got {micro_batch_size}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        platform.install_cpu_shims()
        self.arch = arch
        self.model_cfg = model_cfg
        self.optim_settings = optim
        self.micro_batch_size = micro_batch_size
        self.temperature = temperature
        self.groups = PolicyGroups.from_parallel_state()
        self.params_dtype = torch_dtype(model_cfg.precision.params_dtype)
        chunks = build_model_chunks(arch, model_cfg)
        if initial_weights is not None:
            # Before the optimizer exists: its fp32 master copies are taken from the parameters.
            from megatron_toolrl.bridge import load_hf_into_megatron

            load_hf_into_megatron(chunks, arch, model_cfg, initial_weights)
        self.chunks = wrap_with_ddp(chunks, optim)
        self.optimizer = build_optimizer(self.chunks, optim, self.params_dtype)
        self.scheduler = LRScheduler(optim.lr_schedule, optim.lr, optim.weight_decay)
        self.scheduler.apply(self.optimizer.param_groups)
        self.response_logits_only = response_logits_only
        # Sequence position the LM head starts at for the micro-batch being run (0 = all).
        self._head_start = 0
        for chunk in self.chunks:
            head = getattr(chunk.module, "output_layer", None)  # last pipeline stage only
            if head is not None:
                head.register_forward_pre_hook(self._skip_head_prefix)

    def _skip_head_prefix(self, _module: torch.nn.Module, args: tuple) -> tuple | None:
        # The head's input is (s, b, h); positions before _head_start need no logits.
        return (args[0][self._head_start :], *args[1:]) if self._head_start else None

    def _head_start_for(self, mb: TokenBatch, masked_only: bool) -> int:
        """First position whose logits a loss-mask token of `mb` needs (token t uses position t - 1)."""
        if not (masked_only and self.response_logits_only) or self.model_cfg.parallel.sequence_parallel:
            return 0
        masked = (mb.loss_mask != 0).any(dim=0).nonzero()
        first_token = int(masked[0]) if len(masked) else mb.seq_len - 1
        return max(first_token - 1, 0)

    @property
    def vocab_size(self) -> int:
        return self.arch.vocab_size

    # ---------------------------------------------------------------- batches and counts

    def global_token_counts(self, batch: TokenBatch) -> TokenCounts:
        """Sum of the loss mask and of non-empty sequences over all DP ranks' batches."""
        tokens, sequences = local_token_counts(batch)
        counts = torch.tensor([tokens, float(sequences)], dtype=torch.float64, device=platform.device())
        if self.groups.dp_size > 1:
            dist.all_reduce(counts, group=self.groups.dp)
        return TokenCounts(tokens=float(counts[0]), sequences=int(counts[1]))

    def _micro_batches(self, batch: TokenBatch) -> list[TokenBatch]:
        # Without pipeline stages micro-batches need not be equal: a small batch (a probe, the
        # last minibatch) is not forced to a multiple of micro_batch_size.
        return batch.to(platform.device()).split(self.micro_batch_size, allow_uneven=self.groups.pp_size == 1)

    def _run_schedule(
        self, micro: list[TokenBatch], loss_for_output: Callable, forward_only: bool, masked_only: bool
    ) -> list:
        """megatron's schedule over `micro`; `loss_for_output(mb, output)` gets each micro-batch's
        logits, which cover only its last positions when `masked_only` (see response_logits_only)."""
        from megatron.core.pipeline_parallel import get_forward_backward_func

        def forward_step(data_iterator: Iterator[TokenBatch], model: torch.nn.Module) -> tuple[torch.Tensor, Callable]:
            mb = next(data_iterator)
            self._head_start = self._head_start_for(mb, masked_only)
            try:
                # attention_mask=None: causal; right padding never leaks into earlier positions.
                output = model(mb.input_ids, mb.positions(), None)
            finally:
                self._head_start = 0
            return output, partial(loss_for_output, mb)

        # Interleaved pipelining pulls micro-batches separately for each model chunk.
        iterators = [iter(micro) for _ in self.chunks]
        return get_forward_backward_func()(
            forward_step_func=forward_step,
            data_iterator=iterators if len(iterators) > 1 else iterators[0],
            model=self.chunks,
            num_microbatches=len(micro),
            seq_length=micro[0].seq_len,
            micro_batch_size=micro[0].num_sequences,
            forward_only=forward_only,
        )

    # ---------------------------------------------------------------- forward only

    @torch.no_grad()
    def compute_logprobs(
        self, batch: TokenBatch, temperature: float | None = None, *, masked_only: bool = False
    ) -> torch.Tensor:
        """(B, T) fp32 token-aligned logprobs at the policy's temperature (or `temperature`: 1.0
        gives raw-logit logprobs, as inference engines report them), on every rank of the
        pipeline (out[:, 0] = 0; see policy.batch for the alignment). `masked_only`: only the
        positions a loss reads need be right; with `response_logits_only` the ones before each
        micro-batch's first loss-mask position are then 0."""
        temperature = self.temperature if temperature is None else temperature

        def logprob_output(mb: TokenBatch, output: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict]:
            lp = next_token_logprobs(
                output, mb.input_ids, vocab_size=self.vocab_size, tp_group=self.groups.tp, temperature=temperature
            )
            return torch.zeros(()), torch.tensor(0, dtype=torch.int), {"logprobs": lp}

        micro = self._micro_batches(batch)
        with platform.cuda_to_cpu():
            store = self._run_schedule(micro, logprob_output, forward_only=True, masked_only=masked_only)
        if self.groups.is_last_stage:
            logprobs = torch.cat([out["logprobs"] for out in store])
        else:
            logprobs = torch.empty(batch.input_ids.shape, dtype=torch.float32, device=platform.device())
        if self.groups.pp_size > 1:
            dist.broadcast(logprobs, src=self.groups.last_stage_rank, group=self.groups.pp)
        return logprobs

    # ---------------------------------------------------------------- training

    def train_step(self, batch: TokenBatch, loss_fn: LossFn) -> StepResult:
        """One optimizer update on this rank's share `batch` of the global batch."""
        counts = self.global_token_counts(batch)
        micro = self._micro_batches(batch)
        loss_for_output = partial(self._train_loss, loss_fn, counts)
        for chunk in self.chunks:
            chunk.zero_grad_buffer()
        self.optimizer.zero_grad()
        lr = self.scheduler.apply(self.optimizer.param_groups)
        with platform.cuda_to_cpu():
            store = self._run_schedule(micro, loss_for_output, forward_only=False, masked_only=True)
            update_successful, grad_norm, _ = self.optimizer.step()
        if update_successful:
            self.scheduler.advance()
        metrics = self._reduce_metrics(store)
        return StepResult(
            loss=metrics.pop("loss"),
            grad_norm=float("nan") if grad_norm is None else float(grad_norm),
            update_successful=bool(update_successful),
            lr=lr,
            metrics=metrics,
        )

    def _train_loss(
        self, loss_fn: LossFn, counts: TokenCounts, mb: TokenBatch, output: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        kwargs = dict(vocab_size=self.vocab_size, tp_group=self.groups.tp, temperature=self.temperature)
        logprobs = next_token_logprobs(output, mb.input_ids, **kwargs)
        with torch.no_grad():
            entropy = next_token_entropy(output.detach(), seq_len=mb.seq_len, **kwargs)
        loss, metrics = loss_fn(logprobs, entropy, mb, counts)
        if loss.dim() != 0:
            raise ValueError(f"loss_fn must return a scalar loss, got shape {tuple(loss.shape)}")
        clash = set(metrics) & set(_RESERVED_METRICS)
        if clash:
            raise ValueError(f"loss_fn metrics may not be named {sorted(clash)} (reported by the policy)")
        reported = {
            "loss": loss.detach().float(),
            "entropy": (entropy * mb.loss_mask).sum() / max(counts.tokens, 1.0),
            **{name: value.detach().float() for name, value in metrics.items()},
        }
        # The token count megatron receives is only summed for its own per-token scaling, which
        # our finalize hook skips (the loss is already globally normalised).
        return loss, torch.tensor(int(mb.loss_mask.count_nonzero()), dtype=torch.int), reported

    def _reduce_metrics(self, store: list[dict[str, torch.Tensor]]) -> dict[str, float]:
        """Sum each metric over micro-batches and DP ranks (last stage), then share it over the pipeline."""
        reduced: list[dict[str, float] | None] = [None]
        if self.groups.is_last_stage:
            names = sorted(store[0])
            sums = torch.stack([torch.stack([out[n].reshape(()) for out in store]).sum() for n in names]).double()
            if self.groups.dp_size > 1:
                dist.all_reduce(sums, group=self.groups.dp)
            reduced[0] = {n: float(v) for n, v in zip(names, sums)}
        if self.groups.pp_size > 1:
            dist.broadcast_object_list(reduced, src=self.groups.last_stage_rank, group=self.groups.pp)
        assert reduced[0] is not None
        return reduced[0]

    # ---------------------------------------------------------------- checkpoints

    def layout(self) -> dict[str, Any]:
        par = self.model_cfg.parallel
        return {
            "tensor_parallel": par.tensor_parallel,
            "pipeline_parallel": par.pipeline_parallel,
            "virtual_pipeline_parallel": par.virtual_pipeline_parallel,
            "data_parallel": self.groups.dp_size,
            "world_size": dist.get_world_size(),
            "params_dtype": self.model_cfg.precision.params_dtype,
            "use_distributed_optimizer": self.optim_settings.use_distributed_optimizer,
        }

    def _sharded_state_dict(self, *, with_optimizer: bool, is_loading: bool) -> dict:
        metadata = {
            "singleton_local_shards": False,
            "chained_optim_avoid_prefix": True,
            "distrib_optim_sharding_type": _DIST_OPT_CKPT_FORMAT,
            "dp_cp_group": self.groups.dp,
        }
        model_sd = {
            self._model_key(i): chunk.module.sharded_state_dict(metadata=metadata)
            for i, chunk in enumerate(self.chunks)
        }
        state = dict(model_sd)
        if with_optimizer:
            if is_loading:
                allocate_distributed_optimizer_state(self.optimizer)
            with platform.cuda_to_cpu():
                state["optimizer"] = self.optimizer.sharded_state_dict(
                    model_sd, is_loading=is_loading, metadata=metadata
                )
        return state

    def _model_key(self, index: int) -> str:
        return "model" if len(self.chunks) == 1 else f"model{index}"

    def _optimizer_has_state(self) -> bool:
        """Whether Adam has taken an update on any rank (its moments exist only from then on)."""
        local = any(len(opt.optimizer.state) > 0 for opt in self.optimizer.chained_optimizers)
        flag = torch.tensor([int(local)], device=platform.device())  # NCCL reduces device tensors only
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    def save_checkpoint(self, path: str | Path, extra_state: dict[str, Any] | None = None) -> None:
        """Model, optimizer, LR-schedule and RNG state, plus the caller's JSON-able `extra_state`."""
        has_state = self._optimizer_has_state()
        state = CheckpointState(
            layout=self.layout(),
            scheduler=self.scheduler.state_dict(),
            extra=dict(extra_state or {}),
            optimizer_state=has_state,
        )
        save_checkpoint_dir(path, self._sharded_state_dict(with_optimizer=has_state, is_loading=False), state)

    def load_checkpoint(self, path: str | Path, *, load_optimizer: bool = True) -> dict[str, Any]:
        """Load a checkpoint saved at any TP/PP layout; returns the caller's extra state.

        The optimizer state needs the same optimizer kind as at save time (distributed or not,
        same params dtype); with `load_optimizer=False` only weights and the LR schedule are
        restored and the fp32 master weights are re-derived from the loaded weights.
        """
        saved_state = read_checkpoint_state(path)
        saved, now = saved_state.layout, self.layout()
        # A checkpoint from before the first update has no optimizer state to load.
        load_optimizer = load_optimizer and saved_state.optimizer_state
        if load_optimizer:
            for key in ("use_distributed_optimizer", "params_dtype"):
                if saved.get(key) != now[key]:
                    raise CheckpointError(
                        f"optimizer state saved with {key}={saved.get(key)!r}, this run uses {now[key]!r}; "
                        "load with load_optimizer=False to take the weights only",
                        path=path,
                        field=f"layout.{key}",
                    )
        to_load = self._sharded_state_dict(with_optimizer=load_optimizer, is_loading=True)
        loaded, state = load_checkpoint_dir(path, to_load)
        for i, chunk in enumerate(self.chunks):
            chunk.module.load_state_dict(loaded[self._model_key(i)], strict=True)
        with platform.cuda_to_cpu():
            if load_optimizer:
                load_optimizer_state(self.optimizer, loaded["optimizer"])
            else:
                # Weights only: master copies follow the loaded weights and Adam starts afresh.
                for opt in self.optimizer.chained_optimizers:
                    opt.optimizer.state.clear()
                self.optimizer.reload_model_params()
        self.scheduler.load_state_dict(state.scheduler)
        self.scheduler.apply(self.optimizer.param_groups)
        restore_rng(path, same_layout=saved == now)
        return state.extra

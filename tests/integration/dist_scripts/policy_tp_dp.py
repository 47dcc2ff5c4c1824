"""Two-rank policy scenarios: vocab-parallel logprobs, TP=2 and DP=2 training, checkpoints.

    torchrun --nproc-per-node=2 policy_tp_dp.py WORKDIR

Every scenario re-initialises megatron's parallel state with the same seed. RESULT lines are
compared by tests/integration/test_policy_parallel.py with the single-rank reference run.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import policy_common as pc
import torch
import torch.distributed as dist

from megatron_toolrl.models import ParallelConfig
from megatron_toolrl.parallel import destroy_parallel, init_parallel
from megatron_toolrl.policy import MegatronPolicy, masked_nll_loss, vocab_parallel_entropy, vocab_parallel_logprobs


def _max_over_world(value: float) -> float:
    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return float(t)


def logprob_functions_under_tp2() -> None:
    """Each rank holds half of a padded vocabulary; results and gradients equal the unsplit reference."""
    from megatron.core import parallel_state as ps

    init_parallel(ParallelConfig(tensor_parallel=2), seed=pc.SEED)
    tp_group, tp_rank = ps.get_tensor_model_parallel_group(), ps.get_tensor_model_parallel_rank()
    diffs = {}
    # vocab 250: rank 1 holds 122 real ids + 6 padded; vocab 100: rank 1 holds padding only.
    for vocab in (250, 100):
        for temperature in (1.0, 0.7):
            g = torch.Generator().manual_seed(vocab)
            full = torch.randn(3, 5, 256, generator=g) * 3
            full[..., vocab:] = 40.0  # garbage in padded rows
            targets = torch.randint(0, vocab, (3, 5), generator=g)
            weights = torch.rand(3, 5, generator=g)
            shard = full[..., tp_rank * 128 : (tp_rank + 1) * 128].clone().requires_grad_(True)
            lp = vocab_parallel_logprobs(shard, targets, vocab_size=vocab, tp_group=tp_group, temperature=temperature)
            ent = vocab_parallel_entropy(shard, vocab_size=vocab, tp_group=tp_group, temperature=temperature)
            ((lp * weights).sum() + ent.sum()).backward()

            ref_in = full.clone().requires_grad_(True)
            ref_logp = torch.log_softmax(ref_in[..., :vocab] / temperature, dim=-1)
            ref_lp = ref_logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
            ref_ent = -(ref_logp.exp() * ref_logp).sum(-1)
            ((ref_lp * weights).sum() + ref_ent.sum()).backward()
            ref_grad = ref_in.grad[..., tp_rank * 128 : (tp_rank + 1) * 128]
            key = f"v{vocab}_t{temperature}"
            diffs[key] = {
                "logprobs": _max_over_world((lp - ref_lp).abs().max().item()),
                "entropy": _max_over_world((ent - ref_ent).abs().max().item()),
                "grad": _max_over_world((shard.grad - ref_grad).abs().max().item()),
            }
    pc.emit("tp2_functions", diffs)


def _full_logits(policy: MegatronPolicy, batch) -> list:
    """Logits over the true vocabulary, gathered from the TP shards (PP=1 only)."""
    from megatron.core.tensor_parallel.mappings import gather_from_tensor_model_parallel_region

    with torch.no_grad():
        local = policy.chunks[0](batch.input_ids, batch.positions(), None)
        full = gather_from_tensor_model_parallel_region(local, group=policy.groups.tp)
    return full[..., : pc.TINY_LLAMA["vocab_size"]].tolist()


def tp2_training_and_resume(workdir: Path) -> None:
    batch = pc.make_batch()
    init_parallel(ParallelConfig(tensor_parallel=2), seed=pc.SEED)
    policy = MegatronPolicy(pc.tiny_arch(), pc.model_config(tp=2), pc.optim_settings(), micro_batch_size=2)
    result = {"logprobs": policy.compute_logprobs(batch).tolist()}
    steps = [policy.train_step(batch, masked_nll_loss) for _ in range(3)]
    result.update(
        losses=[s.loss for s in steps],
        grad_norms=[s.grad_norm for s in steps],
        entropy=[s.metrics["entropy"] for s in steps],
        lrs=[s.lr for s in steps],
        logprobs_after=policy.compute_logprobs(batch).tolist(),
        logits_after=_full_logits(policy, batch),
    )
    policy.save_checkpoint(workdir / "tp2_step3", {"step": 3, "note": "tp2"})
    # The loss of a step is computed before its update: the second step after the save is the
    # first whose loss depends on the optimizer state and learning rate restored from it.
    after = [policy.train_step(batch, masked_nll_loss) for _ in range(2)]
    result.update(
        continued_losses=[s.loss for s in after],
        continued_lrs=[s.lr for s in after],
        continued_logprobs=policy.compute_logprobs(batch).tolist(),
    )

    # A fresh policy (another seed, so nothing is inherited by accident) resumes from step 3.
    init_parallel(ParallelConfig(tensor_parallel=2), seed=pc.SEED + 1)
    resumed = MegatronPolicy(pc.tiny_arch(), pc.model_config(tp=2), pc.optim_settings(), micro_batch_size=2)
    extra = resumed.load_checkpoint(workdir / "tp2_step3")
    after = [resumed.train_step(batch, masked_nll_loss) for _ in range(2)]
    result.update(
        resumed_extra=extra,
        resumed_losses=[s.loss for s in after],
        resumed_lrs=[s.lr for s in after],
        resumed_logprobs=resumed.compute_logprobs(batch).tolist(),
    )
    # Control: the same checkpoint without its optimizer state must train differently.
    init_parallel(ParallelConfig(tensor_parallel=2), seed=pc.SEED + 1)
    weights_only = MegatronPolicy(pc.tiny_arch(), pc.model_config(tp=2), pc.optim_settings(), micro_batch_size=2)
    weights_only.load_checkpoint(workdir / "tp2_step3", load_optimizer=False)
    result["weights_only_losses"] = [weights_only.train_step(batch, masked_nll_loss).loss for _ in range(2)]
    pc.emit("tp2", result)


def dp2_training(workdir: Path) -> None:
    """TP=1, two DP ranks with half the batch each; plain and distributed optimizer."""
    batch = pc.make_batch()
    rank = dist.get_rank()
    result = {}
    for distributed in (False, True):
        init_parallel(ParallelConfig(), seed=pc.SEED)
        settings = pc.optim_settings(use_distributed_optimizer=distributed)
        policy = MegatronPolicy(pc.tiny_arch(), pc.model_config(), settings, micro_batch_size=2)
        local = batch.shard(rank, 2)
        tag = "distopt" if distributed else "plain"
        steps = [policy.train_step(local, masked_nll_loss) for _ in range(3)]
        result[tag] = {"losses": [s.loss for s in steps], "grad_norms": [s.grad_norm for s in steps]}
        if distributed:
            policy.save_checkpoint(workdir / "dp2_distopt_step3", {"step": 3})
            result[tag]["continued_losses"] = [policy.train_step(local, masked_nll_loss).loss for _ in range(2)]
            init_parallel(ParallelConfig(), seed=pc.SEED + 1)
            resumed = MegatronPolicy(pc.tiny_arch(), pc.model_config(), settings, micro_batch_size=2)
            resumed.load_checkpoint(workdir / "dp2_distopt_step3")
            result[tag]["resumed_losses"] = [resumed.train_step(local, masked_nll_loss).loss for _ in range(2)]
    # The distributed optimizer's state, saved over DP=2, resharded onto TP=2 x DP=1.
    init_parallel(ParallelConfig(tensor_parallel=2), seed=pc.SEED + 1)
    settings = pc.optim_settings(use_distributed_optimizer=True)
    tp2 = MegatronPolicy(pc.tiny_arch(), pc.model_config(tp=2), settings, micro_batch_size=2)
    tp2.load_checkpoint(workdir / "dp2_distopt_step3")
    result["distopt_dp2_to_tp2_losses"] = [tp2.train_step(batch, masked_nll_loss).loss for _ in range(2)]
    pc.emit("dp2", result)


def main() -> None:
    warnings.filterwarnings("ignore")  # megatron's "TE/apex not installed" notices on every rank
    workdir = Path(sys.argv[1])
    logprob_functions_under_tp2()
    tp2_training_and_resume(workdir)
    dp2_training(workdir)
    destroy_parallel()


if __name__ == "__main__":
    main()

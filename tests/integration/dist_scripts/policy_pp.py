"""Two-rank pipeline-parallel scenarios and checkpoint resharding.

    torchrun --nproc-per-node=2 policy_pp.py WORKDIR

Needs WORKDIR/init_untied, WORKDIR/init_tied (policy_reference.py) and WORKDIR/tp2_step3
(policy_tp_dp.py). megatron initialises each pipeline stage's layers from the stage's own RNG
draws, so a PP=2 model of the same seed is a different model; the seed's TP=1 weights are
loaded through a dist checkpoint instead (which reshards PP).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import policy_common as pc
import torch
import torch.distributed as dist

from megatron_toolrl.errors import CheckpointError
from megatron_toolrl.models import ParallelConfig
from megatron_toolrl.parallel import destroy_parallel, init_parallel
from megatron_toolrl.policy import MegatronPolicy, masked_nll_loss


def pp_policy(vpp: int | None = None, tied: bool = False, **optim) -> MegatronPolicy:
    init_parallel(ParallelConfig(pipeline_parallel=2, virtual_pipeline_parallel=vpp), seed=pc.SEED)
    cfg = pc.model_config(pp=2, vpp=vpp)
    return MegatronPolicy(pc.tiny_arch(tied), cfg, pc.optim_settings(**optim), micro_batch_size=2)


def pp_from_reference_init(workdir: Path) -> None:
    batch = pc.make_batch()
    result = {}
    fresh = pp_policy()
    result["fresh_init_logprobs"] = fresh.compute_logprobs(batch).tolist()
    for name, vpp, tied in (("pp2", None, False), ("pp2_vpp2", 2, False), ("pp2_tied", None, True)):
        policy = pp_policy(vpp=vpp, tied=tied)
        policy.load_checkpoint(workdir / ("init_tied" if tied else "init_untied"))
        logprobs = policy.compute_logprobs(batch).tolist()
        steps = [policy.train_step(batch, masked_nll_loss) for _ in range(3)]
        result[name] = {
            "logprobs": logprobs,
            "losses": [s.loss for s in steps],
            "grad_norms": [s.grad_norm for s in steps],
            "entropy": [s.metrics["entropy"] for s in steps],
            # Every rank returns the same result; the test reads rank 0, which is not the last stage.
            "same_on_all_ranks": _same_on_all_ranks(torch.tensor([[s.loss, s.grad_norm] for s in steps])),
        }
    pc.emit("pp_reference", result)


def _same_on_all_ranks(t: torch.Tensor) -> bool:
    gathered = [torch.empty_like(t) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, t)
    return all(torch.equal(gathered[0], g) for g in gathered)


def tp2_checkpoint_resharded(workdir: Path) -> None:
    """The TP=2 checkpoint after three steps, loaded at PP=2 and at TP=1 x DP=2."""
    from megatron.core import parallel_state as ps

    batch = pc.make_batch()
    result = {}
    policy = pp_policy()
    extra = policy.load_checkpoint(workdir / "tp2_step3")
    result["pp2"] = {
        "extra": extra,
        "logprobs": policy.compute_logprobs(batch).tolist(),
        "losses": [policy.train_step(batch, masked_nll_loss).loss for _ in range(2)],
        "logprobs_after": policy.compute_logprobs(batch).tolist(),
    }
    init_parallel(ParallelConfig(), seed=pc.SEED + 7)
    policy = MegatronPolicy(pc.tiny_arch(), pc.model_config(), pc.optim_settings(), micro_batch_size=2)
    policy.load_checkpoint(workdir / "tp2_step3")
    with torch.no_grad():
        logits = policy.chunks[0](batch.input_ids, batch.positions(), None)[..., : pc.TINY_LLAMA["vocab_size"]]
    local = batch.shard(ps.get_data_parallel_rank(), ps.get_data_parallel_world_size())
    result["tp1_dp2"] = {
        "logits": logits.tolist(),
        "losses": [policy.train_step(local, masked_nll_loss).loss for _ in range(2)],
    }
    # Optimizer state of another optimizer kind is refused before anything is loaded.
    try:
        policy.load_checkpoint(workdir / "dp2_distopt_step3")
        result["kind_mismatch"] = "loaded"
    except CheckpointError as err:
        result["kind_mismatch"] = str(err)
    pc.emit("tp2_resharded", result)


def main() -> None:
    warnings.filterwarnings("ignore")  # megatron's "TE/apex not installed" notices on every rank
    workdir = Path(sys.argv[1])
    pp_from_reference_init(workdir)
    tp2_checkpoint_resharded(workdir)
    destroy_parallel()


if __name__ == "__main__":
    main()

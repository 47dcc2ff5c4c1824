"""Single-rank (TP=PP=DP=1) reference runs for the policy tests, plus bf16 and bad checkpoints.

    torchrun --nproc-per-node=1 policy_reference.py WORKDIR

Writes WORKDIR/init_untied and WORKDIR/init_tied (the seed's initial weights, for loading into
PP layouts whose own initialisation differs) and prints RESULT lines (policy_common.emit).
"""

from __future__ import annotations

import shutil
import sys
import warnings
from pathlib import Path

import policy_common as pc
import torch

from megatron_toolrl.errors import CheckpointError
from megatron_toolrl.parallel import destroy_parallel, init_parallel
from megatron_toolrl.policy import MegatronPolicy, masked_nll_loss


def reference_run(workdir: Path, tied: bool) -> None:
    tag = "tied" if tied else "untied"
    init_parallel(pc.model_config().parallel, seed=pc.SEED)
    policy = MegatronPolicy(pc.tiny_arch(tied), pc.model_config(), pc.optim_settings(), micro_batch_size=2)
    batch = pc.make_batch()
    logits = policy.chunks[0](batch.input_ids, batch.positions(), None).detach()
    policy.save_checkpoint(workdir / f"init_{tag}", {"step": 0})
    result = {
        "logprobs": policy.compute_logprobs(batch).tolist(),
        "logits_true_vocab": logits[..., : pc.TINY_LLAMA["vocab_size"]].tolist(),
    }
    steps = [policy.train_step(batch, masked_nll_loss) for _ in range(3)]
    result.update(
        losses=[s.loss for s in steps],
        grad_norms=[s.grad_norm for s in steps],
        entropy=[s.metrics["entropy"] for s in steps],
        logprobs_after=policy.compute_logprobs(batch).tolist(),
        masked_logprobs_after=policy.compute_logprobs(batch, masked_only=True).tolist(),
    )
    pc.emit(f"reference_{tag}", result)
    if not tied:
        full_head_run(workdir / f"init_{tag}", batch)


def full_head_run(init: Path, batch) -> None:
    """The same three steps with the LM head over every position (response_logits_only=False)."""
    policy = MegatronPolicy(pc.tiny_arch(), pc.model_config(), pc.optim_settings(), micro_batch_size=2,
                            response_logits_only=False)
    policy.load_checkpoint(init)
    steps = [policy.train_step(batch, masked_nll_loss) for _ in range(3)]
    pc.emit("full_head", {
        "losses": [s.loss for s in steps],
        "grad_norms": [s.grad_norm for s in steps],
        "entropy": [s.metrics["entropy"] for s in steps],
        "logprobs_after": policy.compute_logprobs(batch).tolist(),
        "masked_logprobs_after": policy.compute_logprobs(batch, masked_only=True).tolist(),
    })


def bf16_run(workdir: Path) -> None:
    """bf16 parameters: the optimizer keeps fp32 master weights, a step runs, and the run
    checkpoints and resumes (the local spec's norms must be bf16 too for megatron's optimizer)."""
    init_parallel(pc.model_config(dtype="bf16").parallel, seed=pc.SEED)
    policy = MegatronPolicy(pc.tiny_arch(), pc.model_config(dtype="bf16"), pc.optim_settings(), micro_batch_size=4)
    batch = pc.make_batch()
    before = [p.detach().clone() for p in policy.chunks[0].parameters()]
    steps = [policy.train_step(batch, masked_nll_loss) for _ in range(2)]
    (inner,) = policy.optimizer.chained_optimizers  # megatron-core 0.16.1 always returns a ChainedOptimizer
    main_params = [p for group in inner.optimizer.param_groups for p in group["params"]]
    pc.emit(
        "bf16",
        {
            "optimizer": type(inner).__name__,
            "model_dtypes": sorted({str(p.dtype) for p in policy.chunks[0].parameters()}),
            "main_dtypes": sorted({str(p.dtype) for p in main_params}),
            "num_main": len(main_params),
            "num_model": len(before),
            "changed": sum(not torch.equal(b, p) for b, p in zip(before, policy.chunks[0].parameters())),
            "losses": [s.loss for s in steps],
            "update_successful": [s.update_successful for s in steps],
            "logprobs_dtype": str(policy.compute_logprobs(batch).dtype),
        },
    )
    policy.save_checkpoint(workdir / "bf16_step2")
    continued = policy.train_step(batch, masked_nll_loss).loss
    resumed_policy = MegatronPolicy(pc.tiny_arch(), pc.model_config(dtype="bf16"), pc.optim_settings(), micro_batch_size=4)
    resumed_policy.load_checkpoint(workdir / "bf16_step2")
    resumed = resumed_policy.train_step(batch, masked_nll_loss).loss
    pc.emit("bf16_resume", {"continued": continued, "resumed": resumed})


def bad_checkpoints(workdir: Path) -> None:
    """Missing, incomplete and corrupt checkpoint directories raise CheckpointError naming the path."""
    init_parallel(pc.model_config().parallel, seed=pc.SEED)
    policy = MegatronPolicy(pc.tiny_arch(), pc.model_config(), pc.optim_settings(), micro_batch_size=2)
    good = workdir / "init_untied"
    cases = {}

    def attempt(name: str, path: Path) -> None:
        try:
            policy.load_checkpoint(path)
            cases[name] = "loaded"
        except CheckpointError as err:
            cases[name] = str(err)

    attempt("missing", workdir / "nope")
    no_state = workdir / "no_state"
    shutil.copytree(good, no_state)
    (no_state / "policy_state.json").unlink()
    attempt("no_state", no_state)
    bad_json = workdir / "bad_json"
    shutil.copytree(good, bad_json)
    (bad_json / "policy_state.json").write_text('{"format_version": 1,\n "layout": }')
    attempt("bad_json", bad_json)
    no_mcore = workdir / "no_mcore"
    shutil.copytree(good, no_mcore)
    (no_mcore / "mcore" / "metadata.json").unlink()
    attempt("no_mcore_metadata", no_mcore)
    no_shards = workdir / "no_shards"
    shutil.copytree(good, no_shards)
    for shard in (no_shards / "mcore").glob("*.distcp"):
        shard.unlink()
    attempt("no_shards", no_shards)
    truncated = workdir / "truncated"
    shutil.copytree(good, truncated)
    for shard in (truncated / "mcore").glob("*.distcp"):
        shard.write_bytes(shard.read_bytes()[:100])
    attempt("truncated_shards", truncated)
    # A save killed before its rename leaves only <dir>.tmp: the error says so.
    shutil.copytree(good, workdir / "killed.tmp")
    attempt("killed_save", workdir / "killed")
    try:
        policy.save_checkpoint(workdir / "not_json", {"when": object()})
        cases["not_json_extra"] = "saved"
    except CheckpointError as err:
        cases["not_json_extra"] = str(err)
    cases["not_json_dirs"] = sorted(p.name for p in workdir.glob("not_json*"))
    pc.emit("bad_checkpoints", cases)


def overwrite_checkpoint(workdir: Path) -> None:
    """Saving over an existing checkpoint replaces it and leaves no .tmp/.old behind."""
    init_parallel(pc.model_config().parallel, seed=pc.SEED)
    policy = MegatronPolicy(pc.tiny_arch(), pc.model_config(), pc.optim_settings(), micro_batch_size=4)
    batch = pc.make_batch()
    target = workdir / "overwritten"
    policy.save_checkpoint(target, {"version": 1})
    policy.train_step(batch, masked_nll_loss)
    policy.save_checkpoint(target, {"version": 2})
    logprobs = policy.compute_logprobs(batch)
    init_parallel(pc.model_config().parallel, seed=pc.SEED + 3)
    fresh = MegatronPolicy(pc.tiny_arch(), pc.model_config(), pc.optim_settings(), micro_batch_size=4)
    extra = fresh.load_checkpoint(target)
    pc.emit(
        "overwrite",
        {
            "extra": extra,
            "dirs": sorted(p.name for p in workdir.glob("overwritten*")),
            "logprobs_max_diff": float((fresh.compute_logprobs(batch) - logprobs).abs().max()),
            "scheduler_steps": fresh.scheduler.step_count,
        },
    )


def main() -> None:
    warnings.filterwarnings("ignore")  # megatron's "TE/apex not installed" notices on every rank
    workdir = Path(sys.argv[1])
    reference_run(workdir, tied=False)
    reference_run(workdir, tied=True)
    bf16_run(workdir)
    bad_checkpoints(workdir)
    overwrite_checkpoint(workdir)
    destroy_parallel()


if __name__ == "__main__":
    main()

"""Loading megatron optimizer state from a dist checkpoint, with the fixes torch AdamW needs.

Without TransformerEngine or apex (CPU, or a GPU install without them) megatron-core 0.16.1's
DistributedOptimizer wraps torch.optim.AdamW, which keeps a per-parameter 'step' tensor. Two
code paths of 0.16.1 do not expect it:

1. Building the state dict to load into (`sharded_state_dict(is_loading=True)`) reads the shared
   step from the inner optimizer's state and asserts when the optimizer has not stepped yet.
   Upstream's own remedy (one optimizer step on zero gradients) would also apply weight decay
   to the weights, so `allocate_distributed_optimizer_state` allocates an all-zero state
   instead; the load overwrites every entry.
2. `load_state_dict` puts 'step' into every parameter's state and then copies the checkpoint's
   per-parameter tensors over *all* state keys, but the 'fully_reshardable' format stores the
   step separately: KeyError 'step'. `load_optimizer_state` loads the non-parameter part first,
   sets the step aside while the parameter state is copied in, and puts it back, one tensor per
   parameter (megatron shares one step tensor between all parameters, which torch's foreach
   AdamW would then increment once per parameter).

With TransformerEngine/apex present neither applies and megatron's own load runs unchanged.
"""

from __future__ import annotations

from typing import Any

import torch


def _torch_adam_distributed_optimizers(optimizer: Any) -> list:
    from megatron.core.optimizer import distrib_optimizer

    if distrib_optimizer.HAVE_APEX_OR_TE:
        return []
    return [opt for opt in optimizer.chained_optimizers if isinstance(opt, distrib_optimizer.DistributedOptimizer)]


def allocate_distributed_optimizer_state(optimizer: Any) -> None:
    """Zero Adam state (with step 0) for every DistributedOptimizer that has not stepped yet."""
    for opt in _torch_adam_distributed_optimizers(optimizer):
        if len(opt.optimizer.state) > 0:
            continue
        for group in opt.optimizer.param_groups:
            for param in group["params"]:
                opt.optimizer.state[param] = {
                    "step": torch.tensor(0.0),
                    "exp_avg": torch.zeros_like(param),
                    "exp_avg_sq": torch.zeros_like(param),
                }


def load_optimizer_state(optimizer: Any, state: Any) -> None:
    """`optimizer.load_state_dict(state)` for a megatron ChainedOptimizer, see the module docstring."""
    patched = _torch_adam_distributed_optimizers(optimizer)
    if not patched:
        optimizer.load_state_dict(state)
        return
    chained = optimizer.chained_optimizers
    states = [state] if len(chained) == 1 else [state[k] for k in sorted(state)]
    for opt, opt_state in zip(chained, states):
        if opt not in patched or opt_state.get("param_state_sharding_type") != "fully_reshardable":
            opt.load_state_dict(opt_state)
            continue
        opt_state = dict(opt_state)
        param_state = opt_state.pop("param_state")
        opt_state.pop("param_state_sharding_type")
        opt.load_state_dict(opt_state)  # torch state (with step) and grad scaler
        steps = {p: s.pop("step") for p, s in opt.optimizer.state.items() if "step" in s}
        opt.load_parameter_state_from_fully_reshardable(param_state)
        for param, step in steps.items():
            # megatron assigned one shared tensor to every parameter; torch's foreach AdamW then
            # increments it once per parameter per step, which corrupts the bias correction.
            opt.optimizer.state[param]["step"] = step.detach().clone()
    if len(chained) > 1:
        optimizer._synchronize_steps()  # what ChainedOptimizer.load_state_dict does after its parts

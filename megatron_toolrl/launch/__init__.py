"""Launching at scale: nothing here is imported by training itself.

- `planner` (`megatron-toolrl plan`): TP/PP/DP layout, memory per GPU, rollout engines and a
  projected step time for a model on a cluster; `memory`, `throughput` and `gpus` are its parts.
- `config.LaunchConfig`: the recipe's `launch:` section (cluster shape, step size, ports).
- `nemo` (`megatron-toolrl launch`): a recipe through NeMo-Run, local or SLURM.
- `vllm_node`: the vLLM servers of one rollout node (started by the slurm/ scripts).
- `recipe`: the `launch:` keys as shell variables for the slurm/ scripts.
- `smoke`: the launch smoke workload, a tiny megatron GPT that checkpoints and honours
  preemption signals (tests the launch path; not the trainer).
"""

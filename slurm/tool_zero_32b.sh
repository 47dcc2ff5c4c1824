#!/bin/bash
# Tool Zero (GG-GRPO) on Qwen2.5-32B, disaggregated: megatron trainer nodes + vLLM rollout nodes.
#
#   sbatch --nodes=4 slurm/tool_zero_32b.sh                      (from the repository root)
#   DRYRUN=1 SLURM_JOB_NODELIST=gpu[1-4] SLURM_NNODES=4 bash slurm/tool_zero_32b.sh   (print the commands)
#
# Layout: the planner (megatron_toolrl.launch.planner) splits the job's nodes into trainer nodes
# (first) and rollout nodes (rest) and picks TP/PP for the trainer and the vLLM TP; the job is
# refused when the layout does not fit in GPU memory. Trainer nodes run one torchrun each
# (GPUS_PER_NODE ranks, c10d rendezvous on the first trainer node); rollout nodes run
# megatron_toolrl.launch.vllm_node, i.e. GPUS_PER_NODE / vLLM-TP OpenAI-compatible vLLM servers
# with our weight-sync worker extension. The trainer pushes weights over a torch.distributed group
# at SYNC_ADDR:SYNC_PORT (the first trainer node) that each server's workers join; both sides get
# the address. No Ray: srun places every process.
#
# Preemption: SLURM sends USR1 120 s before the time limit (--signal=B:USR1@120; or
# `scancel --signal=USR1 --batch JOB`); the trainer checkpoints and stops, the servers are stopped,
# and the job requeues itself; the next run resumes from CKPT_DIR (checkpoint.resume=true).
#
# Environment (env var > recipe `launch:` section > default):
#   RECIPE           trainer recipe (default examples/tool_zero_qwen2.5_32b.yaml)
#   WORKLOAD         trainer (default) | smoke (the launch smoke workload, for checking a cluster)
#   MODEL GPU GPUS_PER_NODE   planner inputs (default qwen2.5-32b, h100-80gb, 8)
#   TP PP ROLLOUT_NODES VLLM_TP   force the layout (checked by the planner; default: planned)
#   HF_DIR           HF model directory the vLLM servers load (required unless DRYRUN=1)
#   CKPT_DIR         checkpoints, shared by requeued runs (default <repo>/checkpoints/<job-name>)
#   MASTER_PORT VLLM_PORT SYNC_PORT   ports (default 29500, 8000, 29600)
#   VLLM_STARTUP_TIMEOUT  seconds for every server to answer /health (default 1800)
#   OVERRIDES        more trainer key=value overrides, space-separated
#   LOG_ROOT         logs go to LOG_ROOT/<job-name>-<job-id>/ (default <repo>/logs)
#   DRYRUN=1         print the srun commands instead of running them
#SBATCH --job-name=tool-zero-32b
#SBATCH --nodes=4
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=8
#SBATCH --exclusive
#SBATCH --time=24:00:00
#SBATCH --requeue
#SBATCH --signal=B:USR1@120
#SBATCH --open-mode=append
#SBATCH --output=%x-%j.out
set -uo pipefail

_here=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
for _lib in "${TOOLRL_REPO:-}/slurm/lib.sh" "$_here/lib.sh" "${SLURM_SUBMIT_DIR:-.}/slurm/lib.sh"; do
  [ -f "$_lib" ] && break
done
# shellcheck source=slurm/lib.sh
source "$_lib" || { echo "slurm/lib.sh not found: submit from the repository root or set TOOLRL_REPO" >&2; exit 2; }

tr_setup
tr_param RECIPE "$REPO/examples/tool_zero_qwen2.5_32b.yaml"
tr_load_recipe "$RECIPE"
tr_param WORKLOAD trainer
tr_param MODEL qwen2.5-32b
tr_param GPU h100-80gb
tr_param GPUS_PER_NODE 8
tr_param MASTER_PORT 29500
tr_param VLLM_PORT 8000
tr_param SYNC_PORT 29600
tr_param CKPT_DIR "$REPO/checkpoints/$JOB_NAME"
tr_param VLLM_STARTUP_TIMEOUT 1800
tr_param HF_DIR ""
[ -n "$HF_DIR" ] || [ "$DRYRUN" = 1 ] || tr_die "set HF_DIR (or launch.hf_dir in the recipe): the HF model the vLLM servers load"

tr_nodes
forced=()
[ -n "${TP:-}" ] && forced+=(--tp "$TP")
[ -n "${PP:-}" ] && forced+=(--pp "$PP")
[ -n "${ROLLOUT_NODES:-}" ] && forced+=(--rollout-nodes "$ROLLOUT_NODES")
[ -n "${VLLM_TP:-}" ] && forced+=(--vllm-tp "$VLLM_TP")
tr_plan --recipe "$RECIPE" --model "$MODEL" --gpu "$GPU" --gpus-per-node "$GPUS_PER_NODE" --nodes "$NNODES" "${forced[@]}"
[ "$PLAN_ROLLOUT_NODES" -ge 1 ] || tr_die "the plan has no rollout nodes; this script is for disaggregated jobs (>= 2 nodes)"

TRAINER_NODES=("${NODES[@]:0:$PLAN_TRAINER_NODES}")
ROLLOUT_NODES_LIST=("${NODES[@]:$PLAN_TRAINER_NODES}")
HEAD=${TRAINER_NODES[0]}
SYNC_ADDR=$HEAD
ALL_GPUS=$(seq -s, 0 $((GPUS_PER_NODE - 1)))

urls=()
for node in "${ROLLOUT_NODES_LIST[@]}"; do
  for ((e = 0; e < PLAN_ENGINES_PER_NODE; e++)); do urls+=("http://$node:$((VLLM_PORT + e))"); done
done
# Both sides learn the weight-sync group's address: the trainer creates it, each server's workers
# join it when the trainer asks them to (worker_ext.mtrl_dist_join).
export TOOLRL_SYNC_ADDR=$SYNC_ADDR TOOLRL_SYNC_PORT=$SYNC_PORT TOOLRL_VLLM_URLS
TOOLRL_VLLM_URLS=$(tr_join , "${urls[@]}")

tr_trap_preemption

# Rollout nodes: one srun task per node; it starts that node's servers (the same on every node).
node_cmd=("$PYTHON" -m megatron_toolrl.launch.vllm_node --model "${HF_DIR:-HF_DIR}" --gpus "$ALL_GPUS"
          --tensor-parallel-size "$PLAN_VLLM_TP" --base-port "$VLLM_PORT" --log-dir "$LOG_DIR")
if [ "$DRYRUN" = 1 ]; then engine_lines=$("${node_cmd[@]}" --dry-run) || tr_die "vllm_node --dry-run failed"; fi
for node in "${ROLLOUT_NODES_LIST[@]}"; do
  tr_launch "vllm-$node" srun --nodes=1 --ntasks=1 --nodelist="$node" --output="$LOG_DIR/vllm_node_${node}_r${RESTART}.log" \
    "${node_cmd[@]}"
  if [ "$DRYRUN" = 1 ]; then sed "s|^|[dryrun]   $node |" <<< "$engine_lines"; fi
done
for url in "${urls[@]}"; do tr_wait_http "$url/health" "$VLLM_STARTUP_TIMEOUT"; done

# Trainer nodes: one torchrun per node; ranks = nodes x GPUS_PER_NODE, megatron TP x PP x DP.
# The rollout keys are the trainer's external-server settings.
tr_workload_cmd "$TR_KEY_TP=$PLAN_TP" "$TR_KEY_PP=$PLAN_PP"
tr_attach_servers dist "${urls[@]}"
# shellcheck disable=SC2046
tr_run_trainer trainer srun --nodes="$PLAN_TRAINER_NODES" --ntasks-per-node=1 --nodelist="$(tr_join , "${TRAINER_NODES[@]}")" \
  --kill-on-bad-exit=1 --output="$LOG_DIR/trainer_%n_r${RESTART}.log" \
  "$PYTHON" -m torch.distributed.run --nnodes="$PLAN_TRAINER_NODES" --nproc-per-node="$GPUS_PER_NODE" \
  --rdzv-backend=c10d --rdzv-endpoint="$HEAD:$MASTER_PORT" --rdzv-id="$JOB_ID-$RESTART" --max-restarts=0 \
  $(tr_torchrun_signal_args) "${WORKLOAD_CMD[@]}"

#!/bin/bash
# ToolExpander on Qwen2.5-1.5B on one GPU node: trainer GPUs and vLLM GPUs side by side.
#
#   sbatch slurm/toolexpander_1.5b.sh                                  (from the repository root)
#   DRYRUN=1 SLURM_JOB_NODELIST=gpu001 SLURM_NNODES=1 bash slurm/toolexpander_1.5b.sh   (print the commands)
#
# The planner splits the node's GPUs: the first PLAN_TRAINER_GPUS run megatron under one torchrun
# (TP/PP from the plan, DP the rest), the others run vLLM servers (megatron_toolrl.launch.vllm_node).
# Both steps share the node (srun --overlap) and are kept apart by CUDA_VISIBLE_DEVICES. Weights
# reach the servers through shared-memory files (same node). Preemption and requeue as in
# tool_zero_32b.sh (USR1 120 s before the limit; checkpoint, stop, requeue, resume).
#
# Environment (env var > recipe `launch:` section > default):
#   RECIPE           trainer recipe (default examples/toolexpander_qwen2.5_1.5b.yaml)
#   WORKLOAD         trainer (default) | smoke
#   MODEL GPU GPUS_PER_NODE   planner inputs (default qwen2.5-1.5b, h100-80gb, 8)
#   TP PP VLLM_TP    force the layout (checked by the planner)
#   HF_DIR           HF model the vLLM servers load (required unless DRYRUN=1)
#   CKPT_DIR         checkpoints, shared by requeued runs (default <repo>/checkpoints/<job-name>)
#   VLLM_PORT        first server's port (default 8000); VLLM_STARTUP_TIMEOUT (default 900 s)
#   OVERRIDES        more trainer key=value overrides, space-separated
#   LOG_ROOT         logs go to LOG_ROOT/<job-name>-<job-id>/ (default <repo>/logs)
#   DRYRUN=1         print the srun commands instead of running them
#SBATCH --job-name=toolexpander-1.5b
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=8
#SBATCH --exclusive
#SBATCH --time=12:00:00
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
tr_param RECIPE "$REPO/examples/toolexpander_qwen2.5_1.5b.yaml"
tr_load_recipe "$RECIPE"
tr_param WORKLOAD trainer
tr_param MODEL qwen2.5-1.5b
tr_param GPU h100-80gb
tr_param GPUS_PER_NODE 8
tr_param VLLM_PORT 8000
tr_param CKPT_DIR "$REPO/checkpoints/$JOB_NAME"
tr_param VLLM_STARTUP_TIMEOUT 900
tr_param HF_DIR ""
[ -n "$HF_DIR" ] || [ "$DRYRUN" = 1 ] || tr_die "set HF_DIR (or launch.hf_dir in the recipe): the HF model the vLLM servers load"

tr_nodes
[ "$NNODES" = 1 ] || tr_die "this script runs on one node (got $NNODES); use tool_zero_32b.sh as the multi-node template"
forced=()
[ -n "${TP:-}" ] && forced+=(--tp "$TP")
[ -n "${PP:-}" ] && forced+=(--pp "$PP")
[ -n "${VLLM_TP:-}" ] && forced+=(--vllm-tp "$VLLM_TP")
tr_plan --recipe "$RECIPE" --model "$MODEL" --gpu "$GPU" --gpus-per-node "$GPUS_PER_NODE" --nodes 1 "${forced[@]}"

NODE=${NODES[0]}
TRAINER_GPUS=$(seq -s, 0 $((PLAN_TRAINER_GPUS - 1)))
ROLLOUT_GPUS=$(seq -s, "$PLAN_TRAINER_GPUS" $((GPUS_PER_NODE - 1)))
urls=()
for ((e = 0; e < PLAN_ENGINES; e++)); do urls+=("http://127.0.0.1:$((VLLM_PORT + e))"); done

tr_trap_preemption

node_cmd=("$PYTHON" -m megatron_toolrl.launch.vllm_node --model "${HF_DIR:-HF_DIR}" --gpus "$ROLLOUT_GPUS"
          --tensor-parallel-size "$PLAN_VLLM_TP" --base-port "$VLLM_PORT" --host 127.0.0.1 --log-dir "$LOG_DIR")
tr_launch "vllm-$NODE" srun --overlap --nodes=1 --ntasks=1 --nodelist="$NODE" \
  --output="$LOG_DIR/vllm_node_${NODE}_r${RESTART}.log" "${node_cmd[@]}"
if [ "$DRYRUN" = 1 ]; then "${node_cmd[@]}" --dry-run | sed "s|^|[dryrun]   $NODE |"; fi
for url in "${urls[@]}"; do tr_wait_http "$url/health" "$VLLM_STARTUP_TIMEOUT"; done

tr_workload_cmd "$TR_KEY_TP=$PLAN_TP" "$TR_KEY_PP=$PLAN_PP"
tr_attach_servers shm "${urls[@]}"
# shellcheck disable=SC2046
tr_run_trainer trainer srun --overlap --nodes=1 --ntasks=1 --nodelist="$NODE" --export="ALL,CUDA_VISIBLE_DEVICES=$TRAINER_GPUS" \
  --output="$LOG_DIR/trainer_r${RESTART}.log" \
  "$PYTHON" -m torch.distributed.run --standalone --nproc-per-node="$PLAN_TRAINER_GPUS" \
  $(tr_torchrun_signal_args) "${WORKLOAD_CMD[@]}"

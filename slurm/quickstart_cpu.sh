#!/bin/bash
# The CPU job on one node: torchrun with NPROC gloo ranks, checkpointing, preemption + requeue.
#
#   sbatch slurm/quickstart_cpu.sh                         (from the repository root)
#   STEPS=2 OVERRIDES="grpo.group_size=4" sbatch slurm/quickstart_cpu.sh
#   WORKLOAD=smoke NPROC=2 sbatch slurm/quickstart_cpu.sh  (the launch smoke workload)
#
# Environment (env var > recipe `launch:` > default):
#   WORKLOAD      trainer (default): `megatron_toolrl.cli train RECIPE`; smoke: a tiny megatron GPT
#                 doing forward passes and checkpoints (megatron_toolrl.launch.smoke), to check a
#                 node's launch set-up without a model.
#   RECIPE        trainer recipe (default examples/quickstart_cpu.yaml; only read for WORKLOAD=trainer)
#   NPROC         ranks on the node (default 1; the recipe's in-process vLLM engine needs one trainer
#                 rank: use rollout.mode=server for more)
#   STEPS         `steps` override (default: none for the trainer, 4 for smoke)
#   CKPT_DIR      checkpoint directory (default <repo>/checkpoints/<job-name>; shared by requeued runs)
#   OVERRIDES     more key=value overrides for the workload, space-separated
#   LOG_ROOT      log root (default <repo>/logs); this job logs to LOG_ROOT/<job-name>-<job-id>/
#   DRYRUN=1      print the srun command instead of running it
#   MAX_REQUEUES  requeues after preemption signals (default 20)
#SBATCH --job-name=quickstart-cpu
#SBATCH --nodes=1
#SBATCH --ntasks=1
#SBATCH --cpus-per-task=2
#SBATCH --time=01:00:00
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
tr_param WORKLOAD trainer
tr_param RECIPE "$REPO/examples/quickstart_cpu.yaml"
if [ "$WORKLOAD" = trainer ]; then tr_load_recipe "$RECIPE"; fi
tr_param NPROC 1
tr_param CKPT_DIR "$REPO/checkpoints/$JOB_NAME"
tr_param STEPS "$([ "$WORKLOAD" = smoke ] && echo 4)"

steps=()
[ -n "$STEPS" ] && steps=("$TR_KEY_STEPS=$STEPS")
tr_workload_cmd "${steps[@]}"
# shellcheck disable=SC2046
TORCHRUN=("$PYTHON" -m torch.distributed.run --standalone --nproc-per-node="$NPROC" $(tr_torchrun_signal_args))

tr_trap_preemption
# One task on this node; its CPUs are the job's (task/affinity binds them). OMP threads per rank
# share them; megatron on CPU runs its GEMMs in those threads.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(( ${SLURM_CPUS_PER_TASK:-1} / NPROC > 0 ? ${SLURM_CPUS_PER_TASK:-1} / NPROC : 1 ))}
tr_run_trainer trainer srun --ntasks=1 --nodes=1 --cpus-per-task="${SLURM_CPUS_PER_TASK:-1}" \
  --output="$LOG_DIR/trainer_r${RESTART}.log" "${TORCHRUN[@]}" "${WORKLOAD_CMD[@]}"

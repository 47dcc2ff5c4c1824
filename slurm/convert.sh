#!/bin/bash
# Checkpoint conversion on one node: HF <-> megatron-core distributed checkpoint (checkpoints_conv/).
#
#   DIRECTION=hf_to_mcore HF_DIR=... OUT_DIR=... TP=8 sbatch slurm/convert.sh
#   DIRECTION=mcore_to_hf MCORE_DIR=... OUT_DIR=... sbatch slurm/convert.sh
#
# hf_to_mcore with TP x PP > 1 starts TP x PP torchrun ranks itself (one srun task). The saved
# TP/PP do not bind the trainer: dist_checkpointing reshards on load.
#
# Environment:
#   DIRECTION   hf_to_mcore | mcore_to_hf (required)
#   HF_DIR      hf_to_mcore: the HF model directory
#   MCORE_DIR   mcore_to_hf: the megatron checkpoint directory
#   OUT_DIR     where the result goes (required; must not exist or be empty unless FORCE=1)
#   TP PP       hf_to_mcore: layout to save at (default 1, 1)
#   DTYPE       hf_to_mcore: fp32 | bf16 | fp16 (default fp32); mcore_to_hf: cast (default: the checkpoint's)
#   FORCE=1     replace a non-empty OUT_DIR
#   LOG_ROOT    logs go to LOG_ROOT/<job-name>-<job-id>/ (default <repo>/logs)
#   DRYRUN=1    print the srun command instead of running it
#SBATCH --job-name=convert
#SBATCH --nodes=1
#SBATCH --ntasks=1
#SBATCH --time=04:00:00
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
: "${DIRECTION:?set DIRECTION=hf_to_mcore or mcore_to_hf}"
: "${OUT_DIR:?set OUT_DIR}"
force=()
[ "${FORCE:-0}" = 1 ] && force=(--force)
case $DIRECTION in
  hf_to_mcore)
    : "${HF_DIR:?set HF_DIR}"
    cmd=("$PYTHON" "$REPO/checkpoints_conv/hf_to_mcore.py" --hf-dir "$HF_DIR" --out-dir "$OUT_DIR"
         --tp "${TP:-1}" --pp "${PP:-1}" --dtype "${DTYPE:-fp32}" "${force[@]}") ;;
  mcore_to_hf)
    : "${MCORE_DIR:?set MCORE_DIR}"
    dtype=()
    [ -n "${DTYPE:-}" ] && dtype=(--dtype "$DTYPE")
    cmd=("$PYTHON" "$REPO/checkpoints_conv/mcore_to_hf.py" --mcore-dir "$MCORE_DIR" --out-dir "$OUT_DIR"
         "${dtype[@]}" "${force[@]}") ;;
  *) tr_die "DIRECTION must be hf_to_mcore or mcore_to_hf, got '$DIRECTION'" ;;
esac

tr_launch convert srun --nodes=1 --ntasks=1 --output="$LOG_DIR/convert.log" "${cmd[@]}"
[ "$DRYRUN" = 1 ] && exit 0
tr_wait_pid "$TR_LAST_PID"
rc=$?
tr_log "$DIRECTION exited with code $rc"
exit "$rc"

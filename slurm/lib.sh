# shellcheck shell=bash
# Functions shared by the slurm/*.sh job scripts. Source it; it runs nothing by itself.
#
# Conventions
#   - Parameters come from environment variables, then the recipe's `launch:` section, then the
#     script's default (tr_param). Every parameter a script reads is listed in its header.
#   - Logs of one job go to $LOG_ROOT/<job-name>-<job-id>/ (LOG_ROOT defaults to <repo>/logs);
#     a requeued job keeps its id, so its second run appends to the same directory, and per-step
#     logs carry the restart count (`_r0`, `_r1`, ...).
#   - DRYRUN=1 prints every srun command (`[dryrun] srun ...`, shell-quoted) instead of running
#     it, and skips waiting for servers, so a script can be checked on any machine with fake
#     SLURM_* variables (SLURM_JOB_NODELIST, SLURM_NNODES, SLURM_JOB_ID, SLURM_JOB_NAME).
#   - Preemption: scripts carry `#SBATCH --signal=B:USR1@120`: SLURM signals the batch shell 120 s
#     before the time limit (or when `scancel --signal=USR1 --batch` asks). tr_trap_preemption
#     forwards the signal to the trainer's srun, which passes it to torchrun, which passes it to
#     every rank (torchrun --signals-to-handle); the trainer checkpoints at the next step
#     boundary and exits. The script then stops its other steps and runs `scontrol requeue`:
#     the job goes back to the queue under the same id and its next run resumes from the
#     checkpoint (resume=true). Only processes this script started are signalled (by PID).

TR_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TR_EXIT_PREEMPTED=124          # megatron_toolrl.train.signals.EXIT_CODE_PREEMPTED
TR_PIDS=()                     # srun (or local) processes this script started, in order
TR_NAMES=()
TR_PREEMPTED=""                # the signal that asked the job to stop, if any
TR_TRAINER_PID=""

tr_log() { echo "[$(date +%H:%M:%S) ${JOB_NAME:-${SLURM_JOB_NAME:-job}}] $*" >&2; [ -n "${LOG_DIR:-}" ] && [ -d "$LOG_DIR" ] && echo "[$(date +%F' '%T)] $*" >> "$LOG_DIR/events.log"; return 0; }
tr_die() { tr_log "error: $*"; exit 2; }

# tr_param NAME DEFAULT: $NAME from the environment, else LAUNCH_<NAME> from the recipe, else DEFAULT.
tr_param() {
  local name=$1 default=$2 from_recipe="LAUNCH_$1"
  if [ -n "${!name:-}" ]; then
    :
  elif [ -n "${!from_recipe:-}" ]; then
    printf -v "$name" '%s' "${!from_recipe}"
  else
    printf -v "$name" '%s' "$default"
  fi
  export "${name?}"
}

# tr_setup: repository, python, job id/name, restart count and the job's log directory.
tr_setup() {
  REPO=${TOOLRL_REPO:-$(cd "$TR_LIB_DIR/.." && pwd)}
  [ -f "$REPO/megatron_toolrl/__init__.py" ] || tr_die "no megatron_toolrl checkout at $REPO (set TOOLRL_REPO)"
  if [ -z "${PYTHON:-}" ]; then
    if [ -x "$REPO/.venv/bin/python" ]; then PYTHON=$REPO/.venv/bin/python; else PYTHON=python3; fi
  fi
  export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
  JOB_ID=${SLURM_JOB_ID:-local}
  JOB_NAME=${SLURM_JOB_NAME:-$(basename "$0" .sh)}
  RESTART=${SLURM_RESTART_COUNT:-0}
  DRYRUN=${DRYRUN:-0}
  LOG_ROOT=${LOG_ROOT:-$REPO/logs}
  LOG_DIR=$LOG_ROOT/$JOB_NAME-$JOB_ID
  if [ "$DRYRUN" != 1 ]; then mkdir -p "$LOG_DIR"; fi
  export REPO PYTHON JOB_ID JOB_NAME RESTART DRYRUN LOG_DIR
  if [ "$DRYRUN" = 1 ]; then tr_log "dry run of $JOB_NAME-$JOB_ID: printing the commands"; else tr_log "job $JOB_NAME-$JOB_ID run $RESTART: logs in $LOG_DIR"; fi
}

# tr_load_recipe FILE: the recipe's explicit `launch:` keys as LAUNCH_* variables (validated).
tr_load_recipe() {
  local recipe=$1 assignments
  [ -f "$recipe" ] || tr_die "no such recipe: $recipe (set RECIPE)"
  assignments=$("$PYTHON" -m megatron_toolrl.launch.recipe "$recipe" --shell) || tr_die "bad launch: section in $recipe"
  eval "$assignments"
}

# tr_nodes: NODES=(host ...) of the allocation, from SLURM_JOB_NODELIST.
tr_nodes() {
  local list=${SLURM_JOB_NODELIST:-$(hostname -s)}
  if command -v scontrol >/dev/null 2>&1; then
    mapfile -t NODES < <(scontrol show hostnames "$list")
  else
    # No SLURM client here (a dry run elsewhere): accept a plain comma-separated list.
    case $list in *\[*) tr_die "cannot expand $list without scontrol; give SLURM_JOB_NODELIST as a,b,c" ;; esac
    IFS=, read -r -a NODES <<< "$list"
  fi
  [ "${#NODES[@]}" -gt 0 ] || tr_die "empty node list ($list)"
  NNODES=${SLURM_NNODES:-${#NODES[@]}}
  [ "$NNODES" = "${#NODES[@]}" ] || tr_die "SLURM_NNODES=$NNODES but the node list has ${#NODES[@]} nodes"
}

# tr_join SEP ITEMS...: ITEMS joined with SEP.
tr_join() { local sep=$1 out=$2; shift 2; for x in "$@"; do out+="$sep$x"; done; echo "$out"; }

# tr_plan ARGS...: run the planner (--json), refuse the job if the layout does not fit, and set
# PLAN_TP PLAN_PP PLAN_DP PLAN_TRAINER_NODES PLAN_ROLLOUT_NODES PLAN_TRAINER_GPUS PLAN_ROLLOUT_GPUS
# PLAN_VLLM_TP PLAN_ENGINES PLAN_ENGINES_PER_NODE PLAN_RECOMPUTE.
tr_plan() {
  local json vars
  tr_log "planner: $*"
  json=$("$PYTHON" -m megatron_toolrl.launch.planner "$@" --json) || tr_die "the planner refused this layout (see above)"
  vars=$("$PYTHON" -c '
import json, sys
d = json.load(sys.stdin); lay, ro = d["layout"], d["rollout"]
for key, value in (("TP", lay["tp"]), ("PP", lay["pp"]), ("DP", lay["dp"]), ("TRAINER_NODES", lay["trainer_nodes"]),
                   ("ROLLOUT_NODES", lay["rollout_nodes"]), ("TRAINER_GPUS", lay["trainer_gpus"]),
                   ("ROLLOUT_GPUS", lay["rollout_gpus"]), ("VLLM_TP", ro["vllm_tp"]), ("ENGINES", ro["engines"]),
                   ("ENGINES_PER_NODE", ro["engines_per_node"]), ("RECOMPUTE", lay["recompute"]),
                   ("STEP_S", d["step_time_s"]["total_s"]), ("GB_PER_GPU", d["memory_gb_per_gpu"]["total"])):
    print(f"PLAN_{key}={value}")
' <<< "$json") || tr_die "could not read the planner output"
  eval "$vars"
  if [ -d "$LOG_DIR" ]; then printf '%s\n' "$json" > "$LOG_DIR/plan_r${RESTART}.json"; fi
  tr_log "plan: trainer ${PLAN_TRAINER_NODES} node(s)/${PLAN_TRAINER_GPUS} GPUs TP=$PLAN_TP PP=$PLAN_PP DP=$PLAN_DP" \
         "recompute=$PLAN_RECOMPUTE (${PLAN_GB_PER_GPU} GB/GPU); rollout ${PLAN_ROLLOUT_GPUS} GPUs: $PLAN_ENGINES" \
         "vLLM engines TP=$PLAN_VLLM_TP; projected step ${PLAN_STEP_S} s"
}

# tr_launch NAME CMD...: start CMD (normally an srun) in the background, or print it under DRYRUN.
tr_launch() {
  local name=$1; shift
  if [ "$DRYRUN" = 1 ]; then
    printf '[dryrun] %s:' "$name"
    printf ' %q' "$@"
    printf '\n'
    TR_LAST_PID=""
    return 0
  fi
  "$@" &
  TR_LAST_PID=$!
  TR_PIDS+=("$TR_LAST_PID")
  TR_NAMES+=("$name")
  tr_log "started $name (pid $TR_LAST_PID): $*"
}

# tr_torchrun_args: torchrun's flags that make it pass the preemption signal to its ranks and give
# them time to checkpoint. TORCHRUN_SIGNAL_ARGS="" for torch < 2.8, which lacks --signals-to-handle.
tr_torchrun_signal_args() {
  local default="--signals-to-handle=SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1 --shutdown-timeout=${CHECKPOINT_GRACE_S:-100}"
  echo "${TORCHRUN_SIGNAL_ARGS-$default}"
}

# The trainer's override keys (megatron_toolrl/train/config.py TrainConfig); the smoke workload
# takes the same ones. Kept here, in one place, should the trainer rename them.
TR_KEY_STEPS=steps
TR_KEY_CKPT_DIR=checkpoint.dir
TR_KEY_RESUME=checkpoint.resume
TR_KEY_RUN_DIR=metrics.dir
TR_KEY_TP=model.parallel.tensor_parallel
TR_KEY_PP=model.parallel.pipeline_parallel

# tr_workload_cmd [KEY=VALUE...]: WORKLOAD_CMD=(...) the per-rank python arguments of the trainer
# or of the smoke workload, which take the same override keys (the trainer also the recipe):
#   WORKLOAD=trainer: -m megatron_toolrl.cli train RECIPE checkpoint.dir=.. checkpoint.resume=true metrics.dir=.. ARGS OVERRIDES
#   WORKLOAD=smoke:   -m megatron_toolrl.launch.smoke    checkpoint.dir=.. checkpoint.resume=true metrics.dir=.. ARGS OVERRIDES
# The run directory (metrics, tensorboard) is the job's log directory; checkpoints are in CKPT_DIR,
# which requeued runs share. OVERRIDES: more key=value pairs, space-separated.
tr_workload_cmd() {
  local extra=()
  read -r -a extra <<< "${OVERRIDES:-}"
  case $WORKLOAD in
    trainer) WORKLOAD_CMD=(-m megatron_toolrl.cli train "$RECIPE") ;;
    smoke) WORKLOAD_CMD=(-m megatron_toolrl.launch.smoke) ;;
    *) tr_die "WORKLOAD must be trainer or smoke, got '$WORKLOAD'" ;;
  esac
  WORKLOAD_CMD+=("$TR_KEY_CKPT_DIR=$CKPT_DIR" "$TR_KEY_RESUME=true" "$TR_KEY_RUN_DIR=$LOG_DIR" "$@" "${extra[@]}")
}

# tr_attach_servers TRANSPORT URL...: for WORKLOAD=trainer, append to WORKLOAD_CMD the rollout keys
# that make the trainer attach to the vLLM servers this job started (rollout.server_urls) instead
# of starting its own; each server runs PLAN_VLLM_TP GPUs. TRANSPORT dist also passes the weight-
# sync group's address (SYNC_ADDR, SYNC_PORT), which the servers' workers join.
tr_attach_servers() {
  local transport=$1; shift
  [ "$WORKLOAD" = trainer ] || return 0
  WORKLOAD_CMD+=("rollout.mode=server" "rollout.server_urls=[$(tr_join , "$@")]" "rollout.tensor_parallel=$PLAN_VLLM_TP"
                 "rollout.transport=$transport")
  if [ "$transport" = dist ]; then
    WORKLOAD_CMD+=("rollout.sync_master_addr=$SYNC_ADDR" "rollout.sync_master_port=$SYNC_PORT")
  fi
}

# ------------------------------------------------------------------------------ preemption

_tr_on_signal() {
  local sig=$1
  TR_PREEMPTED=$sig
  tr_log "received SIG$sig: asking the trainer to checkpoint and stop"
  # srun passes USR1 on to its tasks (torchrun), without ending the step as SIGTERM to srun would.
  if [ -n "$TR_TRAINER_PID" ] && kill -0 "$TR_TRAINER_PID" 2>/dev/null; then
    kill -USR1 "$TR_TRAINER_PID" 2>/dev/null || true
  fi
}

# tr_trap_preemption: from now on USR1 (SLURM's --signal=B:USR1@T, or scancel --signal=USR1
# --batch) and TERM reach the trainer as USR1.
tr_trap_preemption() {
  trap '_tr_on_signal USR1' USR1
  trap '_tr_on_signal TERM' TERM
}

# tr_wait_pid PID: wait until PID exits (a trap interrupts `wait`), return its exit code.
tr_wait_pid() {
  local pid=$1 rc
  while true; do
    wait "$pid"
    rc=$?
    if [ "$rc" -gt 128 ] && kill -0 "$pid" 2>/dev/null; then
      continue  # `wait` was interrupted by a trapped signal; the process still runs
    fi
    break
  done
  return "$rc"
}

# tr_stop_others: SIGTERM to every process this script started except the trainer, then wait.
tr_stop_others() {
  local i pid
  for i in "${!TR_PIDS[@]}"; do
    pid=${TR_PIDS[$i]}
    [ "$pid" = "$TR_TRAINER_PID" ] && continue
    if kill -0 "$pid" 2>/dev/null; then
      tr_log "stopping ${TR_NAMES[$i]} (pid $pid)"
      kill -TERM "$pid" 2>/dev/null || true
    fi
  done
  for i in "${!TR_PIDS[@]}"; do
    pid=${TR_PIDS[$i]}
    [ "$pid" = "$TR_TRAINER_PID" ] || wait "$pid" 2>/dev/null || true
  done
}

# tr_finish RC: after the trainer exited with RC. On a preemption signal, requeue the job (up to
# MAX_REQUEUES times) so it resumes from its checkpoint; otherwise exit with RC.
tr_finish() {
  local rc=$1
  tr_stop_others
  if [ -n "$TR_PREEMPTED" ]; then
    if [ "$TR_PREEMPTED" = USR1 ] && [ "$RESTART" -lt "${MAX_REQUEUES:-20}" ]; then
      tr_log "trainer stopped (exit $rc) after SIG$TR_PREEMPTED: requeueing job $JOB_ID (run $((RESTART + 1)) will resume)"
      scontrol requeue "$JOB_ID" || tr_die "scontrol requeue $JOB_ID failed"
      exit 0
    fi
    tr_log "trainer stopped (exit $rc) after SIG$TR_PREEMPTED: not requeued (restart $RESTART, MAX_REQUEUES=${MAX_REQUEUES:-20})"
    exit "$rc"
  fi
  tr_log "trainer exited with code $rc"
  exit "$rc"
}

# tr_run_trainer NAME CMD...: launch the trainer step, wait for it, then tr_finish.
tr_run_trainer() {
  local name=$1 rc
  shift
  tr_launch "$name" "$@"
  [ "$DRYRUN" = 1 ] && return 0
  TR_TRAINER_PID=$TR_LAST_PID
  tr_wait_pid "$TR_TRAINER_PID"
  rc=$?
  tr_finish "$rc"
}

# tr_wait_http URL TIMEOUT_S: poll URL until it answers 200 (vLLM's /health), or fail the job.
tr_wait_http() {
  local url=$1 timeout=$2 start
  [ "$DRYRUN" = 1 ] && { echo "[dryrun] wait for $url (timeout ${timeout}s)"; return 0; }
  start=$(date +%s)
  until curl -sf -o /dev/null "$url"; do
    if [ $(($(date +%s) - start)) -ge "$timeout" ]; then tr_die "$url not healthy after ${timeout}s"; fi
    if [ -n "$TR_PREEMPTED" ]; then tr_finish "$TR_EXIT_PREEMPTED"; fi
    sleep 5
  done
  tr_log "healthy: $url"
}

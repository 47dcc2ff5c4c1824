"""`megatron-toolrl launch`: run a recipe through NeMo-Run, locally or on SLURM.

    megatron-toolrl launch RECIPE --executor local|slurm [--dryrun] [--workload trainer|smoke]
        [--nodes N] [--nproc-per-node N] [--cpus-per-task N] [--partition P] [--account A] [--time HH:MM:SS]
        [--base-dir DIR] [--env KEY=VALUE ...] [key=value ...]

One NeMo-Run Experiment with one task: a `run.Script` of `python -m <module>` under NeMo-Run's
torchrun launcher (nproc-per-node ranks on each of `nodes` nodes). The module is the trainer
(`megatron_toolrl.cli train RECIPE`) or the launch smoke workload (megatron_toolrl.launch.smoke);
trailing key=value arguments are passed on as overrides. Checkpoints go to
<base-dir>/<name>/checkpoints and the run directory (metrics) to <base-dir>/<name>/run, with
`checkpoint.resume=true`, as the SLURM scripts do.

NeMo-Run specifics this module handles (notes/probes/REPORT-bfcl-nemo-slurm.md section 4):
- the slurm executor submits through a LocalTunnel whose job_dir must be
  <experiment base_dir>/experiments, or sbatch cannot find the script it wrote;
- `run.Packager()` (no git archive: the code is used in place) and PYTHONPATH = this checkout;
- the torchrun it launches and the `python` of the task come from PATH: this interpreter's
  directory goes first;
- `Experiment.run()` returns normally when a task failed: this command reads every task's final
  state and exits 1 unless all SUCCEEDED.
`--dryrun` prints what would run (for slurm, the sbatch script) and submits nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import megatron_toolrl

REPO = Path(megatron_toolrl.__file__).resolve().parents[1]
Executor = Literal["local", "slurm"]
Workload = Literal["trainer", "smoke"]
WORKLOAD_MODULES: dict[str, tuple[str, ...]] = {
    "trainer": ("megatron_toolrl.cli", "train"),
    "smoke": ("megatron_toolrl.launch.smoke",),
}


@dataclass(frozen=True)
class LaunchRequest:
    recipe: Path
    executor: Executor
    dryrun: bool = False
    workload: Workload = "trainer"
    nodes: int = 1
    nproc_per_node: int = 1
    cpus_per_task: int = 1
    partition: str | None = None
    account: str | None = None
    time: str = "01:00:00"
    base_dir: Path = Path("runs/nemo")
    name: str = "toolrl"
    env: dict[str, str] = field(default_factory=dict)
    overrides: tuple[str, ...] = ()

    @property
    def checkpoint_dir(self) -> Path:
        return self.base_dir / self.name / "checkpoints"

    @property
    def run_dir(self) -> Path:
        return self.base_dir / self.name / "run"


def task_args(req: LaunchRequest) -> tuple[str, list[str]]:
    """(module, its arguments): the trainer gets the recipe; both get checkpoint/run dirs and overrides."""
    module, *sub = WORKLOAD_MODULES[req.workload]
    args = list(sub)
    if req.workload == "trainer":
        args.append(str(req.recipe))
    args += [f"checkpoint.dir={req.checkpoint_dir}", "checkpoint.resume=true", f"metrics.dir={req.run_dir}",
             *req.overrides]
    return module, args


def environment(req: LaunchRequest) -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)
    path = [p for p in os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep) if p != bin_dir]
    env = {
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p),
        "PATH": os.pathsep.join([bin_dir, *path]),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
    }
    env.update(req.env)
    return env


def build_executor(req: LaunchRequest):
    import nemo_run as run

    env = environment(req)
    if req.executor == "local":
        return run.LocalExecutor(ntasks_per_node=req.nproc_per_node, launcher="torchrun", env_vars=env)
    kwargs = {}
    if req.partition:
        kwargs["partition"] = req.partition
    return run.SlurmExecutor(
        account=req.account,
        nodes=req.nodes,
        ntasks_per_node=req.nproc_per_node,  # the torchrun launcher turns this into 1 task x nproc ranks
        cpus_per_task=req.cpus_per_task,
        time=req.time,
        tunnel=run.LocalTunnel(job_dir=str(req.base_dir.resolve() / "experiments")),
        packager=run.Packager(),
        launcher="torchrun",
        env_vars=env,
        **kwargs,
    )


def build_task(req: LaunchRequest):
    import nemo_run as run

    module, args = task_args(req)
    return run.Script(path=module, m=True, entrypoint="python", args=args)


def launch(req: LaunchRequest) -> int:
    """Run (or dry-run) the experiment; 0 only if every task SUCCEEDED."""
    import nemo_run as run

    if req.workload == "trainer" and not req.recipe.is_file():
        print(f"megatron-toolrl launch: no such recipe: {req.recipe}", file=sys.stderr)
        return 2
    # The torchrun NeMo-Run starts (local executor) is looked up on this process's PATH.
    os.environ["PATH"] = environment(req)["PATH"]
    base = req.base_dir.resolve()
    base.mkdir(parents=True, exist_ok=True)
    with run.Experiment(req.name, base_dir=str(base), log_level="WARN", enable_goodbye_message=False) as exp:
        exp.add(build_task(req), executor=build_executor(req), name=req.name)
        if req.dryrun:
            # NeMo-Run logs the sbatch script through rich (wrapped to the terminal); print the file
            # it writes instead, verbatim, then remove the experiment directory as its dryrun does.
            exp.dryrun(log=req.executor == "local", delete_exp_dir=False)
            exp_dir = Path(exp.jobs[0].executor.job_dir).parent
            for script in sorted(exp_dir.glob("*_sbatch.sh")):
                print(script.read_text())
            shutil.rmtree(exp_dir)
            return 0
        exp.run(sequential=True, detach=False, tail_logs=False)
    # A single task is launched without waiting; the Experiment waits for it when the block exits,
    # and only then are the tasks' final states known.
    states = {job.id: str(job.state) for job in exp.jobs}
    failed = {name: state for name, state in states.items() if not state.endswith("SUCCEEDED")}
    for name, state in states.items():
        print(f"megatron-toolrl launch: task {name}: {state}", file=sys.stderr)
    if failed:
        print(f"megatron-toolrl launch: {len(failed)} of {len(states)} task(s) did not succeed: "
              f"{', '.join(f'{k} ({v})' for k, v in failed.items())}", file=sys.stderr)
        return 1
    return 0


def parse_args(argv: list[str]) -> LaunchRequest:
    ap = argparse.ArgumentParser(prog="megatron-toolrl launch", description=__doc__.split("\n\n")[0])
    ap.add_argument("recipe", type=Path, help="YAML recipe (the trainer reads it; the smoke workload ignores it)")
    ap.add_argument("overrides", nargs="*", help="key=value overrides passed to the workload")
    ap.add_argument("--executor", choices=("local", "slurm"), required=True)
    ap.add_argument("--dryrun", action="store_true", help="print the commands / sbatch script, run nothing")
    ap.add_argument("--workload", choices=("trainer", "smoke"), default="trainer",
                    help="trainer (default) or the launch smoke workload (megatron_toolrl.launch.smoke)")
    ap.add_argument("--nodes", type=int, default=1)
    ap.add_argument("--nproc-per-node", type=int, default=None,
                    help="ranks per node (default: the recipe's launch.gpus_per_node; on CPU pass the core count)")
    ap.add_argument("--cpus-per-task", type=int, default=1, help="SLURM CPUs of the (one) torchrun task per node")
    ap.add_argument("--partition")
    ap.add_argument("--account", help="SLURM account (required by NeMo-Run's SlurmExecutor; default $SBATCH_ACCOUNT)")
    ap.add_argument("--time", default="01:00:00", help="SLURM time limit")
    ap.add_argument("--base-dir", type=Path, default=Path("runs/nemo"),
                    help="experiment, checkpoint and run directories")
    ap.add_argument("--name", default=None, help="experiment and task name (default: the recipe's file name)")
    ap.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="extra environment for the task")
    args = ap.parse_intermixed_args(argv)  # overrides may come before or after the options
    for item in args.overrides + args.env:
        if "=" not in item:
            ap.error(f"expected key=value, got {item!r}")
    nproc = args.nproc_per_node
    if nproc is None:
        from megatron_toolrl.launch.config import load_launch_config

        nproc = load_launch_config(args.recipe if args.recipe.is_file() else None).gpus_per_node
    if nproc < 1 or args.nodes < 1:
        ap.error("--nodes and --nproc-per-node must be >= 1")
    account = args.account or os.environ.get("SBATCH_ACCOUNT") or os.environ.get("SLURM_ACCOUNT")
    if args.executor == "slurm" and not account:
        ap.error("--account is required with --executor slurm (or set SBATCH_ACCOUNT)")
    name = args.name or args.recipe.stem.replace(".", "_").replace("_", "-")
    return LaunchRequest(recipe=args.recipe, executor=args.executor, dryrun=args.dryrun, workload=args.workload,
                         nodes=args.nodes, nproc_per_node=nproc, cpus_per_task=args.cpus_per_task,
                         partition=args.partition, account=account,
                         time=args.time, base_dir=args.base_dir, name=name,
                         env=dict(item.split("=", 1) for item in args.env), overrides=tuple(args.overrides))


def main(argv: list[str] | None = None) -> int:
    from megatron_toolrl.errors import ConfigError

    try:
        req = parse_args(list(sys.argv[1:] if argv is None else argv))
    except ConfigError as err:
        print(f"megatron-toolrl launch: {err}", file=sys.stderr)
        return 2
    return launch(req)


if __name__ == "__main__":
    sys.exit(main())

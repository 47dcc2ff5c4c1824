"""`megatron-toolrl <command>`: one entry point, each command owned by the module that does the work.

Commands import their module only when chosen, so `megatron-toolrl --help` stays fast and a
command's heavy dependencies (megatron, vLLM, BFCL) load only for that command.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    name: str
    module: str
    help: str


COMMANDS: tuple[Command, ...] = (
    Command("quickstart", "megatron_toolrl.quickstart", "the CPU quickstart on SmolLM2-135M"),
    Command("train", "megatron_toolrl.train.loop", "GRPO (grpo | toolexpander | tool_zero mode) from a YAML recipe"),
    Command("sft", "megatron_toolrl.train.sft_cli", "supervised fine-tuning on reference answers; writes an HF checkpoint"),
    Command("eval", "megatron_toolrl.eval.cli", "score outputs on BFCL (official checker) and API-Bank"),
    Command("plan", "megatron_toolrl.launch.planner", "parallel layout, memory per GPU and rollout placement for a cluster"),
    Command("launch", "megatron_toolrl.launch.nemo", "launch a recipe with nemo-run (local or SLURM executor)"),
    Command("sync-check", "megatron_toolrl.rollout.sync_check", "push megatron weights into a vLLM engine and compare logprobs"),
)


def _usage() -> str:
    width = max(len(c.name) for c in COMMANDS)
    lines = ["usage: megatron-toolrl <command> [args...]", "", "commands:"]
    lines += [f"  {c.name:<{width}}  {c.help}" for c in COMMANDS]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    by_name = {c.name: c for c in COMMANDS}
    command = by_name.get(argv[0])
    if command is None:
        print(f"megatron-toolrl: unknown command {argv[0]!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    try:
        module = importlib.import_module(command.module)
    except ModuleNotFoundError as err:
        if err.name == command.module:
            print(f"megatron-toolrl {command.name}: not available in this build ({command.module} missing)", file=sys.stderr)
            return 2
        raise
    result = module.main(argv[1:])
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())

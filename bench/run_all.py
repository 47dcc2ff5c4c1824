"""`make bench`: every benchmark in bench/, one process each, tables printed and JSON kept.

Each benchmark interleaves its two sides (A-B-A-B) in one process and prints medians; this
script only runs them in turn and collects their JSON under bench/results/ (with the machine and
date), so a number quoted in the README comes from a command anyone can rerun.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
RUNS = [
    ("train_throughput", ["bench_train_throughput.py"]),
    ("reward", ["bench_reward.py", "--repeat", "3"]),
    ("rollout", ["bench_rollout.py"]),
]


def machine() -> dict:
    import os

    cpu = "unknown"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "date": time.strftime("%Y-%m-%d")}


def main() -> int:
    out_dir = BENCH / "results"
    out_dir.mkdir(exist_ok=True)
    failed = []
    for name, args in RUNS:
        print(f"\n=== {name} ===", flush=True)
        result = out_dir / f"{name}.json"
        proc = subprocess.run([sys.executable, str(BENCH / args[0]), *args[1:], "--json", str(result)])
        if proc.returncode != 0:
            failed.append(name)
    (out_dir / "machine.json").write_text(json.dumps(machine(), indent=2))
    print(f"\nresults in {out_dir}; machine: {machine()}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

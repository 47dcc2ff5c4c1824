"""What the converter CLIs share: error reporting, progress messages, relaunching under torchrun."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
EXIT_BAD_INPUT = 2
"""Exit code for a clear input error (missing dir, corrupt checkpoint, unsupported model); 1 is
kept for `verify.py`'s "over tolerance"."""

_T0 = time.perf_counter()


def say(message: str) -> None:
    """A progress line on stderr (stdout stays machine-readable), from rank 0 only."""
    if os.environ.get("RANK", "0") != "0":
        return
    from rich.console import Console

    Console(stderr=True, highlight=False).print(f"[dim]{time.perf_counter() - _T0:7.1f}s[/dim] {message}")


def run(main: Callable[[], int]) -> None:
    """Run a CLI's main; our input errors become one line on stderr and exit code 2."""
    import warnings

    # megatron-core warns about missing TransformerEngine/apex on every CPU run, and torch's
    # checkpoint code about its own deprecations: noise for a converter's user.
    warnings.filterwarnings("ignore", message=".*(Transformer Engine|Apex) is not installed.*")
    warnings.filterwarnings("ignore", message=".*Transformer Engine and Apex are not installed.*")
    warnings.filterwarnings("ignore", message="full scope is deprecated")  # megatron-core 0.16.1's own default
    warnings.filterwarnings("ignore", category=FutureWarning)
    from megatron_toolrl.errors import ToolRLError

    try:
        code = main()
    except ToolRLError as err:
        print(f"error: {type(err).__name__}: {err}", file=sys.stderr, flush=True)
        code = EXIT_BAD_INPUT
    sys.exit(code)


def inside_launcher() -> bool:
    """Whether this process is already one rank of a multi-process torchrun/srun/mpirun launch.

    A leftover RANK with WORLD_SIZE=1 (megatron_toolrl.parallel sets both for plain processes,
    and children inherit them) does not count.
    """
    env = os.environ
    return ("TORCHELASTIC_RUN_ID" in env or int(env.get("WORLD_SIZE", "1")) > 1
            or int(env.get("SLURM_NTASKS", "1")) > 1)


def relaunch_under_torchrun(nproc: int, script: str | Path, argv: list[str]) -> int:
    """Run `script argv` as `nproc` local torchrun ranks; returns the launch's exit code."""
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           str(script), *argv]
    say(f"relaunching under torchrun with {nproc} ranks")
    return subprocess.run(cmd, env=env).returncode


def parse_size(text: str) -> int:
    """'5GB', '500MB', '2GiB' or a plain byte count -> bytes."""
    units = {"kib": 1024, "mib": 1024**2, "gib": 1024**3, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "b": 1}
    lowered = text.strip().lower()
    for unit, factor in units.items():
        if lowered.endswith(unit):
            number = lowered[: -len(unit)].strip()
            break
    else:
        number, factor = lowered, 1
    try:
        value = int(float(number) * factor)
    except ValueError:
        raise ValueError(f"not a size: {text!r} (e.g. 5GB, 500MB, 2GiB)") from None
    if value <= 0:
        raise ValueError(f"size must be positive: {text!r}")
    return value

"""The `launch:` keys a recipe sets, as shell assignments for the slurm/ scripts.

    python -m megatron_toolrl.launch.recipe RECIPE --shell

validates the whole `launch:` section (unknown keys and wrong types are errors naming the
recipe's file and line) and prints `LAUNCH_<KEY>=<value>` for each key the recipe sets
explicitly, shell-quoted. Keys the recipe leaves out are not printed, so a script can apply its
own default after the environment and the recipe: env var > recipe > script default.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from megatron_toolrl.config import read_yaml
from megatron_toolrl.errors import ConfigError
from megatron_toolrl.launch.config import load_launch_config


def shell_assignments(recipe: str) -> list[str]:
    cfg = load_launch_config(recipe)  # validation first: a bad section never reaches the script
    data, _ = read_yaml(recipe)
    lines = []
    for key in (data.get("launch") or {}):
        value = getattr(cfg, key)
        if value is None:
            continue
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        lines.append(f"LAUNCH_{key.upper()}={shlex.quote(text)}")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m megatron_toolrl.launch.recipe", description=__doc__.split("\n\n")[0])
    ap.add_argument("recipe")
    ap.add_argument("--shell", action="store_true", required=True, help="print LAUNCH_<KEY>=value lines")
    args = ap.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        print("\n".join(shell_assignments(args.recipe)))
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Rank script for torchrun: `megatron-toolrl sync-check ARGS` (what the console script runs).

    torchrun --nproc-per-node=2 rollout_sync_check.py --hf-dir DIR --tp 2 --mode server
"""

from __future__ import annotations

import sys

from megatron_toolrl.rollout.sync_check import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

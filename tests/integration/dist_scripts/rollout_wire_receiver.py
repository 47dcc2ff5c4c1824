"""Rank 1 of a weight-sync group: receive one stream (dist_wire) and save it as safetensors.

Usage: rollout_wire_receiver.py MASTER_PORT OUT_PATH. Prints the received names in order.
"""

from __future__ import annotations

import sys

from safetensors.torch import save_file

from megatron_toolrl.rollout.dist_wire import new_group, receive_tensors


def main() -> None:
    port, out_path = int(sys.argv[1]), sys.argv[2]
    group = new_group("127.0.0.1", port, rank=1, world_size=2, backend="gloo", timeout_s=60)
    received = {}
    for name, tensor in receive_tensors(group):
        received[name] = tensor.clone()
        print(name, flush=True)
    save_file(received, out_path)


if __name__ == "__main__":
    main()

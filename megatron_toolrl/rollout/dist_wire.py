"""The wire format of the "dist" weight transport, used by both ends (trainer and vLLM worker).

A standalone process group (its own TCPStore, not torch.distributed's default group, which
belongs to megatron in the trainer and to vLLM in the worker): rank 0 is the trainer, ranks
1.. are engine workers. gloo on CPU, NCCL on GPU; the code is the same, only the device differs.

Per bucket rank 0 broadcasts three messages:
  1. header  int64 (2,): [len(meta), len(data)] in bytes; [0, 0] ends the stream;
  2. meta    uint8 (len(meta),): JSON list of [name, dtype, shape, byte offset];
  3. data    uint8 (len(data),): the bucket's tensors back to back, each at an aligned offset.
One flat buffer per bucket keeps the number of collectives independent of the tensor count.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist

# Offsets are multiples of this so every tensor can be viewed in place from the byte buffer.
_ALIGN = 64

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
    "float64": torch.float64,
    "int64": torch.int64,
    "int32": torch.int32,
    "uint8": torch.uint8,
    "int8": torch.int8,
}
_DTYPE_NAMES = {v: k for k, v in DTYPES.items()}

_STORE_PREFIX = "megatron_toolrl/weight_sync"


@dataclass
class SyncGroup:
    """A joined weight-sync group. Holds the TCPStore too: rank 0's store server lives as long as its object."""

    group: dist.ProcessGroup
    store: dist.TCPStore
    rank: int
    world_size: int
    device: torch.device


def new_group(
    master_addr: str, master_port: int, rank: int, world_size: int, backend: str, timeout_s: float
) -> SyncGroup:
    """Join a process group of `world_size` ranks whose rank 0 hosts the TCPStore at master_addr:port.

    Blocks until every rank has joined. Does not touch torch.distributed's default group.
    """
    timeout = datetime.timedelta(seconds=timeout_s)
    store = dist.TCPStore(
        master_addr, master_port, world_size, is_master=(rank == 0), timeout=timeout, wait_for_workers=False
    )
    prefixed = dist.PrefixStore(_STORE_PREFIX, store)
    if backend == "gloo":
        group = dist.ProcessGroupGloo(prefixed, rank, world_size, timeout)
    elif backend == "nccl":
        options = dist.ProcessGroupNCCL.Options()
        options._timeout = timeout
        group = dist.ProcessGroupNCCL(prefixed, rank, world_size, options)
    else:
        raise ValueError(f"weight-sync backend must be 'gloo' or 'nccl', got {backend!r}")
    device = torch.device("cuda", torch.cuda.current_device()) if backend == "nccl" else torch.device("cpu")
    return SyncGroup(group=group, store=store, rank=rank, world_size=world_size, device=device)


def _broadcast(group: dist.ProcessGroup, tensor: torch.Tensor) -> None:
    opts = dist.BroadcastOptions()
    opts.rootRank = 0
    group.broadcast([tensor], opts).wait()


def send_buckets(sync: SyncGroup, buckets: Iterable[list[tuple[str, torch.Tensor]]]) -> tuple[int, int]:
    """Rank 0: broadcast every bucket, then the end marker. Returns (tensors, bytes) sent."""
    group, device = sync.group, sync.device
    num_tensors = num_bytes = 0
    for bucket in buckets:
        if not bucket:
            continue
        meta, offset = [], 0
        for name, tensor in bucket:
            if tensor.dtype not in _DTYPE_NAMES:
                raise TypeError(f"{name}: dtype {tensor.dtype} cannot be sent (supported: {sorted(DTYPES)})")
            meta.append([name, _DTYPE_NAMES[tensor.dtype], list(tensor.shape), offset])
            offset += -(-tensor.numel() * tensor.element_size() // _ALIGN) * _ALIGN
        data = torch.empty(offset, dtype=torch.uint8, device=device)
        for (name, tensor), (_, _, _, start) in zip(bucket, meta):
            nbytes = tensor.numel() * tensor.element_size()
            data[start : start + nbytes].copy_(tensor.detach().contiguous().reshape(-1).view(torch.uint8))
        meta_bytes = torch.frombuffer(bytearray(json.dumps(meta).encode()), dtype=torch.uint8).to(device)
        _broadcast(group, torch.tensor([meta_bytes.numel(), data.numel()], dtype=torch.int64, device=device))
        _broadcast(group, meta_bytes)
        _broadcast(group, data)
        num_tensors += len(bucket)
        num_bytes += data.numel()
    _broadcast(group, torch.zeros(2, dtype=torch.int64, device=device))
    return num_tensors, num_bytes


def receive_tensors(sync: SyncGroup) -> Iterator[tuple[str, torch.Tensor]]:
    """Ranks > 0: yield (name, tensor) as buckets arrive, until rank 0's end marker.

    Tensors are views into the bucket's buffer (no copy); the buffer lives while any is referenced.
    """
    group, device = sync.group, sync.device
    while True:
        header = torch.empty(2, dtype=torch.int64, device=device)
        _broadcast(group, header)
        meta_len, data_len = (int(x) for x in header.tolist())
        if meta_len == 0:
            return
        meta_bytes = torch.empty(meta_len, dtype=torch.uint8, device=device)
        _broadcast(group, meta_bytes)
        data = torch.empty(data_len, dtype=torch.uint8, device=device)
        _broadcast(group, data)
        for name, dtype_name, shape, start in json.loads(meta_bytes.cpu().numpy().tobytes().decode()):
            dtype = DTYPES[dtype_name]
            numel = 1
            for s in shape:
                numel *= s
            nbytes = numel * dtype.itemsize
            yield name, data[start : start + nbytes].view(dtype).view(shape)

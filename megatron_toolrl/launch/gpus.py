"""The GPUs the planner knows: memory, dense bf16 throughput, memory bandwidth.

Numbers are the vendors' datasheet figures for the SXM/OAM parts (dense, i.e. without the 2:4
sparsity doubling). They are peak numbers: the planner multiplies them by the utilisation
assumptions in `planner.Assumptions`, never uses them as measurements.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

GpuName = Literal["h100-80gb", "a100-80gb", "a100-40gb", "h200-141gb", "b200-192gb", "l40s-48gb"]


@dataclass(frozen=True)
class GpuSpec:
    name: GpuName
    memory_gb: float
    """Device memory, GB (1e9 bytes), as sold."""
    bf16_tflops: float
    """Dense bf16 tensor-core peak, TFLOP/s."""
    hbm_tb_s: float
    """Memory bandwidth, TB/s (decode speed is bound by it)."""
    nvlink: bool
    """Whether GPUs of a node talk over NVLink (TP across PCIe is slow; the planner notes it)."""


GPUS: dict[str, GpuSpec] = {
    g.name: g
    for g in (
        GpuSpec("h100-80gb", 80.0, 989.0, 3.35, True),    # H100 SXM5
        GpuSpec("h200-141gb", 141.0, 989.0, 4.8, True),   # H200 SXM: H100 compute, HBM3e
        GpuSpec("a100-80gb", 80.0, 312.0, 2.039, True),   # A100 SXM4 80GB
        GpuSpec("a100-40gb", 40.0, 312.0, 1.555, True),   # A100 SXM4 40GB
        # B200: 192 GB of HBM3e on the package; HGX B200 systems expose 180 GB per GPU.
        GpuSpec("b200-192gb", 192.0, 2250.0, 8.0, True),
        GpuSpec("l40s-48gb", 48.0, 362.0, 0.864, False),  # L40S: GDDR6, PCIe only
    )
}


def get_gpu(name: str) -> GpuSpec:
    key = name.lower()
    if key not in GPUS:
        raise KeyError(f"unknown GPU {name!r}; known: {', '.join(GPUS)}")
    return GPUS[key]

"""Rollout engines over vLLM and the weight sync into them.

- `InprocEngine` (inproc.py): one vllm.LLM inside the trainer process (colocated).
- `ServerEngine` (server.py): N vLLM OpenAI-compatible servers (disaggregated), load-balanced,
  restarted and re-synced when one dies.
- Weight transports for servers, one module each: `transport_shm` (safetensors files in
  /dev/shm) and `transport_dist` (a torch.distributed group the servers' workers join).
- `worker_ext.WeightSyncWorkerExtension`: the code inside vLLM's worker that loads a push.
- Every push can be checked against the trainer's logprobs of a fixed probe batch (verify.py).

Only the light modules are imported here; the engines import vLLM when constructed.
"""

from megatron_toolrl.rollout.config import RolloutConfig
from megatron_toolrl.rollout.types import (
    Completion,
    LogprobAgreement,
    ProbeBatch,
    RolloutEngine,
    SamplingSettings,
    SyncStats,
)
from megatron_toolrl.rollout.verify import SyncMismatchError

__all__ = [
    "Completion", "LogprobAgreement", "ProbeBatch", "RolloutConfig", "RolloutEngine", "SamplingSettings",
    "SyncMismatchError", "SyncStats",
]

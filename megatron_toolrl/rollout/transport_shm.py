"""Weight sync through shared memory: buckets become safetensors files that the servers read.

For servers on the trainer's node. Each bucket is written once to the snapshot directory (by
default in /dev/shm, i.e. RAM); every server loads the whole push in one `reload_weights` call
from the manifest. The files are the last-weights snapshot as well, so a restarted server is
re-synced from them and nothing is written twice. Superseded files are deleted at commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

from megatron_toolrl.rollout.server_process import VLLMServer
from megatron_toolrl.rollout.snapshot import Shard, WeightSnapshot
from megatron_toolrl.rollout.types import Bucket


class ShmTransport:
    """`push` a stream of buckets to servers; `resync` servers from the snapshot."""

    name = "shm"

    def __init__(self, snapshot: WeightSnapshot, timeout_s: float):
        self.snapshot = snapshot
        self.timeout_s = timeout_s

    def push(self, servers: Sequence[VLLMServer], buckets: Iterable[Bucket]) -> tuple[tuple[int, int], dict[int, Exception]]:
        """Write the buckets, load them on every server, commit the snapshot.

        Returns ((tensors, bytes), {server index: error}) so the caller can restart and re-sync
        the servers that failed; the snapshot is committed either way (it holds the new weights).
        """
        shards: list[Shard] = []
        num_bytes = 0
        try:
            for bucket in buckets:
                if bucket:
                    shards.append(self.snapshot.write_bucket(bucket))
                    num_bytes += sum(t.numel() * t.element_size() for _, t in bucket)
        except BaseException:
            self.snapshot.discard(shards)
            raise
        self.snapshot.commit(shards)
        errors = self._load(servers, shards)
        return (sum(len(s.names) for s in shards), num_bytes), errors

    def resync(self, servers: Sequence[VLLMServer]) -> dict[int, Exception]:
        """Load every committed tensor of the snapshot into `servers`."""
        return self._load(servers, self.snapshot.manifest())

    def close(self) -> None:
        pass

    def _load(self, servers: Sequence[VLLMServer], shards: Sequence[Shard]) -> dict[int, Exception]:
        manifest = [s.to_json() for s in shards]
        errors: dict[int, Exception] = {}
        with ThreadPoolExecutor(max_workers=max(1, len(servers))) as pool:
            futures = {s.index: pool.submit(s.rpc, "mtrl_load_shards", [manifest], self.timeout_s) for s in servers}
            for index, fut in futures.items():
                try:
                    fut.result()
                except Exception as err:  # noqa: BLE001 - reported per server to the caller
                    errors[index] = err
        return errors

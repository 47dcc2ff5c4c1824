"""Weight sync through a torch.distributed group that the servers' workers join.

For servers on any node: rank 0 (this trainer process) broadcasts each bucket (`dist_wire`) and
every server worker loads the stream in one `reload_weights` call. gloo on CPU, NCCL on GPU.
The group is formed once and kept; it is formed again whenever its membership changes (a server
restarted, or a re-sync of only some servers), since a gloo/NCCL group cannot replace a member.

Each bucket is also written to the snapshot while it is broadcast, so a server that dies or
fails during a push can be restarted and re-synced from the snapshot afterwards.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

from megatron_toolrl.rollout.dist_wire import SyncGroup, new_group, send_buckets
from megatron_toolrl.rollout.server_process import VLLMServer
from megatron_toolrl.rollout.snapshot import Shard, WeightSnapshot, read_shards
from megatron_toolrl.rollout.types import Bucket

log = logging.getLogger(__name__)


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class DistTransport:
    """`push` a stream of buckets to servers; `resync` servers from the snapshot."""

    name = "dist"

    def __init__(self, snapshot: WeightSnapshot, master_addr: str, backend: str, timeout_s: float, master_port: int = 0):
        self.snapshot = snapshot
        self.master_addr = master_addr
        self.master_port = master_port
        self.backend = backend
        self.timeout_s = timeout_s
        self._group: SyncGroup | None = None
        self._members: tuple[tuple[int, int], ...] = ()

    def push(self, servers: Sequence[VLLMServer], buckets: Iterable[Bucket]) -> tuple[tuple[int, int], dict[int, Exception]]:
        """Broadcast the buckets to every server, keeping a snapshot copy; commit the snapshot.

        Returns ((tensors, bytes), {server index: error}); on a broadcast failure the remaining
        buckets are still written to the snapshot, so failed servers can be re-synced from it.
        """
        shards: list[Shard] = []
        counts = [0, 0]
        source = iter(buckets)

        def tee() -> Iterator[Bucket]:
            for bucket in source:
                if bucket:
                    shards.append(self.snapshot.write_bucket(bucket))
                    counts[0] += len(bucket)
                    counts[1] += sum(t.numel() * t.element_size() for _, t in bucket)
                    yield bucket

        errors = self._broadcast(servers, tee())
        try:
            for _ in tee():  # after a failed broadcast: finish the snapshot
                pass
        except BaseException:
            self.snapshot.discard(shards)
            raise
        self.snapshot.commit(shards)
        return (counts[0], counts[1]), errors

    def resync(self, servers: Sequence[VLLMServer]) -> dict[int, Exception]:
        """Broadcast every committed tensor of the snapshot to `servers` (one bucket per shard)."""
        return self._broadcast(servers, ([*read_shards([shard])] for shard in self.snapshot.manifest()))

    def close(self) -> None:
        self._group, self._members = None, ()

    def _broadcast(self, servers: Sequence[VLLMServer], buckets: Iterable[Bucket]) -> dict[int, Exception]:
        try:
            group = self._ensure_group(servers)
        except Exception as err:  # noqa: BLE001 - every server is affected; the caller heals them
            log.warning("weight-sync group could not be formed: %s", err)
            return {s.index: err for s in servers}
        errors: dict[int, Exception] = {}
        failure: Exception | None = None
        pool = ThreadPoolExecutor(max_workers=len(servers))
        receivers = {s.index: pool.submit(s.rpc, "mtrl_dist_receive", [], self.timeout_s) for s in servers}
        try:
            send_buckets(group, buckets)
        except Exception as err:  # noqa: BLE001
            # Keep only the message: the traceback would hold the group alive.
            failure = RuntimeError(f"weight broadcast failed: {err}")
        del group
        if failure is not None:
            log.warning("%s", failure)
            # Dropping the last reference closes the group's connections, which ends the waits of
            # the receivers still alive (they fail, and the caller re-syncs them).
            self.close()
            errors = {s.index: failure for s in servers}
        for index, fut in receivers.items():
            try:
                fut.result()
            except Exception as err:  # noqa: BLE001
                errors.setdefault(index, err)
        pool.shutdown()
        if errors:
            self.close()
        return errors

    def _ensure_group(self, servers: Sequence[VLLMServer]) -> SyncGroup:
        members = tuple((s.index, s.epoch) for s in servers)
        if self._group is not None and members == self._members:
            return self._group
        self.close()
        tp = servers[0].cfg.tensor_parallel_size
        world_size = 1 + len(servers) * tp
        port = self.master_port or _free_port(self.master_addr)
        pool = ThreadPoolExecutor(max_workers=len(servers) + 1)
        joins = [
            pool.submit(s.rpc, "mtrl_dist_join", [self.master_addr, port, 1 + i * tp, world_size, self.backend, self.timeout_s], self.timeout_s)
            for i, s in enumerate(servers)
        ]
        own = pool.submit(new_group, self.master_addr, port, 0, world_size, self.backend, self.timeout_s)
        # Rank 0 blocks until every rank joined: return as soon as any join fails instead of
        # waiting out the group timeout (the abandoned rank-0 thread ends at that timeout).
        done, _ = wait([own, *joins], timeout=self.timeout_s + 60, return_when=FIRST_EXCEPTION)
        pool.shutdown(wait=False)
        for fut in done:
            fut.result()  # raises the first failure (a server that could not join)
        if len(done) < 1 + len(joins):
            raise TimeoutError(f"weight-sync group of {world_size} ranks not formed within {self.timeout_s:.0f} s")
        self._group, self._members = own.result(), members
        log.info("weight-sync group formed: %d ranks (%s) on %s:%d", world_size, self.backend, self.master_addr, port)
        return self._group

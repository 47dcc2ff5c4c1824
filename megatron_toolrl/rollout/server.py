"""The disaggregated engine: N vLLM servers, load-balanced completions, weight sync, recovery.

Prompts go out as one /v1/completions request each (all n samples of a prompt in one request),
at most `max_concurrency` at a time, each to the server with the fewest requests in flight.
A request that fails because its server died triggers one recovery of that server (restart,
re-sync from the last-weights snapshot, probe check) and is then retried; results are keyed by
prompt index, so every prompt ends with exactly its n completions, none lost, none twice.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
import weakref
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import requests

from megatron_toolrl import platform
from megatron_toolrl.errors import ConfigError
from megatron_toolrl.rollout.completions_api import (
    completion_request,
    parse_completions,
    parse_prompt_logprobs,
    prompt_logprobs_request,
)
from megatron_toolrl.rollout.config import RolloutConfig
from megatron_toolrl.rollout.server_process import ServerError, VLLMServer
from megatron_toolrl.rollout.snapshot import WeightSnapshot
from megatron_toolrl.rollout.transport_dist import DistTransport
from megatron_toolrl.rollout.transport_shm import ShmTransport
from megatron_toolrl.rollout.types import (
    Bucket,
    Completion,
    LogprobAgreement,
    ProbeBatch,
    SamplingSettings,
    SyncStats,
    drain,
    validate_prompts,
)
from megatron_toolrl.rollout.verify import check_probe

log = logging.getLogger(__name__)


class RequestRejected(RuntimeError):
    """A server answered a completion request with a client error (4xx): retrying cannot help."""


@dataclass(frozen=True)
class RestartEvent:
    """A server restarted by the engine."""

    server: int
    reason: str
    seconds: float
    """Restart + re-sync + probe check."""


def _shutdown(servers: list[VLLMServer], snapshot: WeightSnapshot) -> None:
    for s in servers:
        s.stop()
    snapshot.close()


class ServerEngine:
    """A `RolloutEngine` over `cfg.num_servers` vLLM servers started on this node, or over the
    servers at `cfg.server_urls` started elsewhere."""

    def __init__(self, cfg: RolloutConfig):
        if cfg.mode != "server":
            raise ConfigError(f"ServerEngine needs mode 'server', got {cfg.mode!r}", field="mode")
        self.cfg = cfg
        log_dir = Path(cfg.log_dir) if cfg.log_dir else Path(tempfile.mkdtemp(prefix="megatron_toolrl_vllm_logs_"))
        self.snapshot = WeightSnapshot(cfg.sync_snapshot_dir)
        self.transport: ShmTransport | DistTransport
        if cfg.sync_transport == "shm":
            self.transport = ShmTransport(self.snapshot, cfg.sync_timeout_s)
        else:
            self.transport = DistTransport(self.snapshot, cfg.sync_master_addr, platform.default_backend(), cfg.sync_timeout_s,
                                           cfg.sync_master_port)
        if cfg.server_urls:
            self.servers = [VLLMServer(cfg, i, log_dir, external_url=url) for i, url in enumerate(cfg.server_urls)]
        else:
            self.servers = [VLLMServer(cfg, i, log_dir) for i in range(cfg.num_servers)]
        self.restarts: list[RestartEvent] = []
        self._batch_lock = threading.Lock()  # a push never overlaps a generate call
        self._sync_lock = threading.Lock()  # transports are not thread-safe (recoveries run in workers)
        self._slots = threading.Condition()
        self._inflight = [0] * len(self.servers)
        self._recovering = [False] * len(self.servers)
        self._last_probe: ProbeBatch | None = None
        # Stop the servers and free the snapshot (RAM, in /dev/shm) when this object is dropped or
        # the interpreter exits: the servers run in their own sessions and would outlive the trainer.
        self._finalizer = weakref.finalize(self, _shutdown, list(self.servers), self.snapshot)
        with ThreadPoolExecutor(max_workers=len(self.servers)) as pool:
            starts = [pool.submit(s.start) for s in self.servers]
        failures = [f.exception() for f in starts if f.exception() is not None]
        if failures:
            self.close()
            raise failures[0]  # type: ignore[misc]

    # ----- RolloutEngine -----

    def generate(self, prompts: Sequence[str] | Sequence[Sequence[int]], sampling: SamplingSettings) -> list[list[Completion]]:
        items = validate_prompts(prompts)
        if not items:
            return []
        results: dict[int, list[Completion]] = {}
        with self._batch_lock:
            pool = ThreadPoolExecutor(max_workers=min(self.cfg.max_concurrency, len(items)))
            try:
                futures = {pool.submit(self._complete, i, p, sampling): i for i, p in enumerate(items)}
                for fut in as_completed(futures):
                    i = futures[fut]
                    if i in results:
                        raise RuntimeError(f"prompt {i} completed twice")
                    results[i] = fut.result()
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
        missing = [i for i in range(len(items)) if i not in results]
        if missing:
            raise RuntimeError(f"prompts {missing[:10]} have no completions")
        return [results[i] for i in range(len(items))]

    def update_weights(self, buckets: Iterable[Bucket], probe: ProbeBatch | None = None) -> SyncStats:
        source = iter(buckets)
        with self._batch_lock:
            try:
                for server in self.servers:  # a server that died between batches first gets the old weights
                    if not server.health():
                        self._recover(server, server.epoch, "found dead before a weight push", force=True)
                started = time.perf_counter()
                with self._sync_lock:
                    (num_tensors, num_bytes), errors = self.transport.push(self.servers, source)
            except Exception:
                drain(source)
                raise
            # The probe describes these weights; an older one would fail a restarted server.
            self._last_probe = probe
            if errors:
                self._heal_failed_push(errors)
            self._each_server(lambda s: s.reset_prefix_cache())
            seconds = time.perf_counter() - started
            agreements: tuple[LogprobAgreement, ...] = ()
            verify_seconds = 0.0
            if probe is not None:
                t0 = time.perf_counter()
                agreements = tuple(self._each_server(lambda s: self._check(s, probe)))
                verify_seconds = time.perf_counter() - t0
        return SyncStats(
            num_tensors=num_tensors, num_bytes=num_bytes, seconds=seconds, transport=self.transport.name,
            num_engines=len(self.servers), agreements=agreements, verify_seconds=verify_seconds,
        )

    def prompt_logprobs(self, token_ids: Sequence[Sequence[int]], server: int = 0) -> list[list[float]]:
        """Prompt logprobs computed by one server (default the first)."""
        return self._server_prompt_logprobs(self.servers[server], token_ids)

    def health(self) -> bool:
        return all(s.health() for s in self.servers)

    def close(self) -> None:
        with ThreadPoolExecutor(max_workers=max(1, len(self.servers))) as pool:
            list(pool.map(lambda s: s.stop(), self.servers))
        self._finalizer.detach()
        self.transport.close()
        self.snapshot.close()

    def __enter__(self) -> "ServerEngine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----- requests -----

    def _complete(self, prompt_index: int, prompt: str | list[int], sampling: SamplingSettings) -> list[Completion]:
        body = completion_request(prompt, prompt_index, sampling)
        attempts = 1 + self.cfg.max_request_retries
        last: Exception | None = None
        for _ in range(attempts):
            server = self._acquire()
            epoch = server.epoch
            try:
                resp = server.post("/v1/completions", body, timeout=self.cfg.request_timeout_s)
                if resp.status_code == 200:
                    return parse_completions(resp.json(), prompt_index, sampling)
                if resp.status_code < 500:
                    raise RequestRejected(f"prompt {prompt_index}: server {server.index} answered HTTP {resp.status_code}: {resp.text[:1000]}")
                last = ServerError(f"HTTP {resp.status_code}: {resp.text[:500]}")
            except requests.RequestException as err:
                last = err
            finally:
                self._release(server)
            log.warning("prompt %d failed on server %d (%s); recovering and retrying", prompt_index, server.index, last)
            self._recover(server, epoch, f"request failed: {last}")
        raise ServerError(f"prompt {prompt_index}: no completion after {attempts} attempts; last error: {last}")

    def _acquire(self) -> VLLMServer:
        """The server with the fewest requests in flight, skipping servers being restarted."""
        with self._slots:
            while all(self._recovering):
                self._slots.wait()
            best = min((i for i in range(len(self.servers)) if not self._recovering[i]), key=lambda i: self._inflight[i])
            self._inflight[best] += 1
            return self.servers[best]

    def _release(self, server: VLLMServer) -> None:
        with self._slots:
            self._inflight[server.index] -= 1

    def _server_prompt_logprobs(self, server: VLLMServer, token_ids: Sequence[Sequence[int]]) -> list[list[float]]:
        seqs = [list(t) for t in token_ids]
        out = []
        for i, ids in enumerate(seqs):
            if len(ids) < 2:
                raise ValueError(f"sequence {i}: prompt logprobs need at least 2 tokens, got {len(ids)}")
            resp = server.post("/v1/completions", prompt_logprobs_request(ids), timeout=self.cfg.request_timeout_s)
            if resp.status_code != 200:
                raise ServerError(f"server {server.index}: prompt logprobs HTTP {resp.status_code}: {resp.text[:1000]}")
            out.append(parse_prompt_logprobs(resp.json(), ids))
        return out

    # ----- sync checks and recovery -----

    def _check(self, server: VLLMServer, probe: ProbeBatch) -> LogprobAgreement:
        return check_probe(server.url, self._server_prompt_logprobs(server, probe.token_ids), probe, self.cfg.tolerance)

    def _each_server(self, fn):  # fn: VLLMServer -> T; returns [T] in server order
        with ThreadPoolExecutor(max_workers=len(self.servers)) as pool:
            return list(pool.map(fn, self.servers))

    def _recover(self, server: VLLMServer, epoch: int, reason: str, force: bool = False) -> None:
        """Restart `server` and re-sync it, unless another thread already did since `epoch`
        or (without `force`) the server turns out to be healthy (a transient failure)."""
        with server.recover_lock:
            if server.epoch != epoch or (not force and server.health()):
                return
            with self._slots:
                self._recovering[server.index] = True
            try:
                self._restart(server, reason)
                self._resync([server])
            finally:
                with self._slots:
                    self._recovering[server.index] = False
                    self._slots.notify_all()

    def _restart(self, server: VLLMServer, reason: str) -> None:
        if server.restarts >= self.cfg.max_restarts:
            raise ServerError(
                f"vLLM server {server.index} failed ({reason}) and its {self.cfg.max_restarts} restarts are used up; "
                f"log {server.log_path}:\n{server.log_tail()}"
            )
        server.restarts += 1
        action = "waiting for external" if server.external_url else "restarting"
        log.warning("%s vLLM server %d (%s), restart %d/%d", action, server.index, reason, server.restarts, self.cfg.max_restarts)
        started = time.perf_counter()
        server.stop(grace_s=10.0)
        server.start()
        self.restarts.append(RestartEvent(server.index, reason, time.perf_counter() - started))

    def _resync(self, servers: list[VLLMServer]) -> None:
        """Give restarted (or half-loaded) servers the last pushed weights, then check them."""
        if not self.snapshot.empty:
            with self._sync_lock:
                errors = self.transport.resync(servers)
            if errors:
                index, err = next(iter(errors.items()))
                raise ServerError(f"re-sync of server {index} from the weight snapshot failed: {err}")
        for server in servers:
            server.reset_prefix_cache()
            if self._last_probe is not None:
                self._check(server, self._last_probe)

    def _heal_failed_push(self, errors: dict[int, Exception]) -> None:
        failed = [self.servers[i] for i in sorted(errors)]
        dead = [s for s in failed if not s.health()]
        if not dead:
            # Every server is up, so the load itself failed (e.g. an unknown tensor name): a
            # restart would fail the same way.
            index, err = next(iter(sorted(errors.items())))
            raise ServerError(f"weight push failed on server {index}: {err}")
        for server in dead:
            self._restart(server, f"died during a weight push: {errors[server.index]}")
        # Servers that are alive but saw the push break off hold half-loaded layers: re-sync all.
        self._resync(failed)

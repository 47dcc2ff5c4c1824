"""Weight loading inside a vLLM worker: the `worker_extension_cls` of every engine we start.

vLLM mixes this class into its worker class, so `self` is the worker and the methods are reached
with `collective_rpc("mtrl_...")`: in process (objects by reference) or through a server's
dev-mode `/collective_rpc` route (JSON arguments only, hence file paths and group addresses).

Why `reload_weights` and not `model.load_weights`: vLLM on CPU repacks every linear weight into
oneDNN/SGL kernels after loading and leaves the parameters empty, so a plain `load_weights` fails
on shape. `Worker.reload_weights(..., is_checkpoint_format=True)` restores the checkpoint layout
layer by layer, loads, and re-runs the packing. Everything of one push must go through a single
call: a layer split across two calls is processed half-loaded.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import torch

from megatron_toolrl.rollout.dist_wire import SyncGroup, new_group, receive_tensors
from megatron_toolrl.rollout.snapshot import Shard, read_shards


class WeightSyncWorkerExtension:
    """Methods added to the vLLM worker. Names carry an `mtrl_` prefix so they cannot shadow vLLM's."""

    _mtrl_sync: SyncGroup | None = None

    def mtrl_load_tensors(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> int:
        """Load (name, tensor) pairs handed over by reference (in-process engines only)."""
        return self._mtrl_reload(iter(named_tensors))

    def mtrl_load_shards(self, shards: list[dict[str, Any]]) -> int:
        """Load the tensors listed in a manifest of safetensors shards ([{"path", "names"}, ...])."""
        manifest = [Shard(path=str(s["path"]), names=tuple(str(n) for n in s["names"])) for s in shards]
        return self._mtrl_reload(read_shards(manifest))

    def mtrl_dist_join(self, master_addr: str, master_port: int, rank_offset: int, world_size: int, backend: str, timeout_s: float) -> int:
        """Join the trainer's weight-sync group as rank `rank_offset + worker rank`; returns that rank.

        A previous group is dropped first (re-joining after a peer restarted is how groups heal).
        """
        self.mtrl_dist_leave()
        rank = int(rank_offset) + int(self.rank)  # type: ignore[attr-defined]
        self._mtrl_sync = new_group(str(master_addr), int(master_port), rank, int(world_size), str(backend), float(timeout_s))
        return rank

    def mtrl_dist_receive(self) -> int:
        """Receive one push broadcast by the trainer over the joined group and load it."""
        if self._mtrl_sync is None:
            raise RuntimeError("mtrl_dist_receive before mtrl_dist_join: this worker is in no weight-sync group")
        stream = receive_tensors(self._mtrl_sync)
        try:
            return self._mtrl_reload(stream)
        finally:
            # The loader stops at the iterator's end; should it stop early, drain the rest so the
            # trainer's broadcasts are matched and the group stays usable.
            for _ in stream:
                pass

    def mtrl_dist_leave(self) -> None:
        self._mtrl_sync = None

    def _mtrl_reload(self, named_tensors: Iterator[tuple[str, torch.Tensor]]) -> int:
        count = 0

        def counted() -> Iterator[tuple[str, torch.Tensor]]:
            nonlocal count
            for item in named_tensors:
                count += 1
                yield item

        self.reload_weights(weights_iterator=counted(), is_checkpoint_format=True)  # type: ignore[attr-defined]
        self._mtrl_retie_embeddings()
        return count

    def _mtrl_retie_embeddings(self) -> None:
        """Refresh lm_head's packed GEMM copy for models with tied embeddings.

        The reload writes the new embedding into the shared parameter, but lm_head is not in the
        checkpoint, so its kernel (built from the old values at load time) is put back unchanged:
        logits come out of the old matrix (probe: mean |dlogp| 0.17). Re-tie and re-pack it.
        """
        model_config = self.model_config  # type: ignore[attr-defined]
        if not model_config.hf_text_config.tie_word_embeddings:
            return
        model = self.model_runner.model  # type: ignore[attr-defined]
        model.lm_head.weight = model.model.embed_tokens.weight
        model.lm_head.quant_method.process_weights_after_loading(model.lm_head)

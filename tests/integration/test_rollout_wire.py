"""The dist weight-sync wire format between two real processes over gloo, and the snapshot store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from megatron_toolrl.rollout.dist_wire import new_group, send_buckets
from megatron_toolrl.rollout.snapshot import WeightSnapshot, read_shards
from tests.helpers import REPO, free_port

RECEIVER = Path(__file__).parent / "dist_scripts" / "rollout_wire_receiver.py"


def _buckets() -> list[list[tuple[str, torch.Tensor]]]:
    g = torch.Generator().manual_seed(0)
    return [
        [("a.weight", torch.randn(7, 5, generator=g)), ("a.bias", torch.randn(3, generator=g).to(torch.bfloat16))],
        [],  # empty buckets are skipped, not sent as the end marker
        [
            ("b.weight_t", torch.randn(4, 6, generator=g).t()),  # non-contiguous
            ("b.ids", torch.arange(11, dtype=torch.int64)),
            ("b.scalar", torch.tensor(3.5)),
            ("b.empty", torch.zeros(0, 4)),
            ("b.half", torch.randn(2, 3, generator=g).to(torch.float16)),
        ],
    ]


def test_buckets_arrive_bit_exact_in_order(tmp_path):
    port = free_port()
    out = tmp_path / "received.safetensors"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, str(RECEIVER), str(port), str(out)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        group = new_group("127.0.0.1", port, rank=0, world_size=2, backend="gloo", timeout_s=60)
        sent_tensors, sent_bytes = send_buckets(group, _buckets())
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr[-3000:]
    expected = [(n, t) for b in _buckets() for n, t in b]
    assert stdout.split() == [n for n, _ in expected]
    got = load_file(str(out))
    for name, tensor in expected:
        assert got[name].dtype == tensor.dtype and got[name].shape == tensor.shape, name
        assert torch.equal(got[name], tensor), name
    assert sent_tensors == len(expected)
    assert sent_bytes >= sum(t.numel() * t.element_size() for _, t in expected)


def test_snapshot_keeps_newest_value_of_each_tensor(tmp_path):
    snap = WeightSnapshot(tmp_path / "snap")
    full = {f"w{i}": torch.full((2,), float(i)) for i in range(5)}
    first = [snap.write_bucket([(n, full[n]) for n in ["w0", "w1", "w2"]]), snap.write_bucket([(n, full[n]) for n in ["w3", "w4"]])]
    snap.commit(first)
    # A partial push supersedes w1 and every tensor of the second shard.
    second = [snap.write_bucket([("w1", torch.full((2,), 10.0)), ("w3", torch.full((2,), 30.0)), ("w4", torch.full((2,), 40.0))])]
    snap.commit(second)

    got = dict(read_shards(snap.manifest()))
    assert {n: t[0].item() for n, t in got.items()} == {"w0": 0.0, "w1": 10.0, "w2": 2.0, "w3": 30.0, "w4": 40.0}
    # The fully superseded shard file is gone; the partly superseded one stays for w0 and w2.
    assert sorted(p.name for p in (tmp_path / "snap").iterdir()) == ["shard_000000.safetensors", "shard_000002.safetensors"]
    assert [s.names for s in snap.manifest()] == [("w0", "w2"), ("w1", "w3", "w4")]

    with pytest.raises(ValueError, match="pushed twice"):
        snap.commit([snap.write_bucket([("w0", full["w0"])]), snap.write_bucket([("w0", full["w0"])])])
    snap.close()
    assert not (tmp_path / "snap").exists()

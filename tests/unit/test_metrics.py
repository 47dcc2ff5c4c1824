"""Metrics: JSONL is exact and truncatable for resume; the plot is a real PNG with the panels."""

import json
import os
import signal

from megatron_toolrl.train.metrics import MetricsWriter, plot_metrics, read_metrics
from megatron_toolrl.train.signals import StopRequest


def test_jsonl_truncate_and_plot(tmp_path):
    w = MetricsWriter(tmp_path / "m.jsonl", tensorboard_dir=tmp_path / "tb")
    for step in range(1, 6):
        w.log(step, {"reward/mean": step * 0.5, "reward/component/format": 1.0, "optim/lr": 1e-3 * 0.9**step,
                     "pool/in_pool": step % 3, "policy/entropy": 2.0 - step * 0.1, "note": "text"})
    w.truncate_after(3)
    w.log(4, {"reward/mean": 9.0})
    w.close()
    rows = read_metrics(tmp_path / "m.jsonl")
    assert [r["step"] for r in rows] == [1, 2, 3, 4] and rows[-1]["reward/mean"] == 9.0
    assert any(name.startswith("events.out.tfevents") for name in os.listdir(tmp_path / "tb"))
    png = plot_metrics(tmp_path / "m.jsonl", tmp_path / "curves.png", title="t")
    assert png is not None and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_plot_without_data_returns_none(tmp_path):
    assert plot_metrics(tmp_path / "none.jsonl", tmp_path / "x.png") is None


def test_stop_request_sets_flag_on_signal():
    stop = StopRequest()
    try:
        assert not stop.should_stop()
        os.kill(os.getpid(), signal.SIGUSR1)
        assert stop.should_stop() and stop.requested == signal.SIGUSR1
    finally:
        stop.restore()


def test_a_fresh_run_sets_an_earlier_runs_metrics_aside(tmp_path):
    first = MetricsWriter(tmp_path / "metrics.jsonl", tensorboard_dir=None)
    first.log(1, {"reward/mean": 0.5})
    first.close()
    second = MetricsWriter(tmp_path / "metrics.jsonl", tensorboard_dir=None)
    kept = second.set_aside()
    assert kept is not None and kept.parent == tmp_path and kept.name.startswith("metrics.") and kept.suffix == ".jsonl"
    assert json.loads(kept.read_text()) == {"step": 1, "reward/mean": 0.5}  # nothing lost
    assert not (tmp_path / "metrics.jsonl").exists()
    second.log(1, {"reward/mean": 0.7})
    assert [json.loads(line)["reward/mean"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()] == [0.7]
    again = second.set_aside()  # within the same second as the first: a second name, not an overwrite
    assert again is not None and again != kept and kept.exists() and len(list(tmp_path.glob("metrics.*.jsonl"))) == 2
    assert MetricsWriter(tmp_path / "none.jsonl", None).set_aside() is None

"""Launch smoke workload: a tiny megatron GPT that runs forward passes and checkpoints. NOT the trainer.

It exists to test the launch machinery (SLURM scripts, nemo-run, torchrun, preemption and
requeue) with a real megatron-core job before the trainer exists, and stays useful afterwards as
a fast cluster check. It takes the trainer's override keys, so a script switches between the two
by changing only the command:

    python -m megatron_toolrl.launch.smoke steps=4 checkpoint.dir=CKPT checkpoint.resume=true \\
        metrics.dir=LOG [smoke.tensor_parallel=2 smoke.step_seconds=1.0 ...]

Run it under torchrun or srun for several ranks (TP x DP = world size). Every step it builds a
deterministic token batch from (seed, step), runs the model forward with vocab-parallel cross
entropy, and rank 0 appends `{"step", "loss", "loss_sum", ...}` to <metrics.dir>/metrics.jsonl. Every
`checkpoint.interval` steps and on SIGTERM/SIGUSR1 it writes `checkpoint.dir/checkpoint.json`
(step and running loss sum, the state a resumed run must restore to continue the same sums). A
signalled run exits with `EXIT_CODE_PREEMPTED` (124) after saving; with `checkpoint.resume=true` the next
run continues from the saved step, so its losses and sums equal those of an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from megatron_toolrl.config import load_config
from megatron_toolrl.errors import CheckpointError, ConfigError
from megatron_toolrl.train.signals import EXIT_CODE_PREEMPTED

CHECKPOINT_FILE = "checkpoint.json"


@dataclass
class SmokeCheckpoint:
    dir: str = ""
    """Directory of checkpoint.json (created if missing). Required."""
    interval: int = 1
    """Save every this many steps; 0 = only at the end and on a stop signal (as the trainer)."""
    resume: bool = False
    """Continue from <dir>/checkpoint.json when it exists (a fresh start otherwise)."""

    def __post_init__(self) -> None:
        if self.interval < 0:
            raise ConfigError(f"must be >= 0, got {self.interval}", field="interval")


@dataclass
class SmokeMetrics:
    dir: str = ""
    """Run directory; rank 0 appends one line per step to <dir>/metrics.jsonl. Empty: checkpoint.dir."""


@dataclass
class SmokeModel:
    tensor_parallel: int = 1
    """TP degree; the world size must be a multiple (the rest is data parallelism)."""
    layers: int = 2
    hidden: int = 64
    heads: int = 4
    kv_heads: int = 2
    vocab: int = 256
    seq_len: int = 32
    micro_batch: int = 2
    step_seconds: float = 0.0
    """Sleep after each step, so that a test can signal the job while it runs."""


@dataclass
class SmokeConfig:
    """The trainer's launch-relevant keys (megatron_toolrl.train.config.TrainConfig: steps, seed,
    checkpoint.dir/interval/resume, metrics.dir) plus the smoke model's size under `smoke.`."""

    steps: int = 4
    """Forward passes in total (a resumed run does the remaining ones)."""
    seed: int = 1234
    checkpoint: SmokeCheckpoint = field(default_factory=SmokeCheckpoint)
    metrics: SmokeMetrics = field(default_factory=SmokeMetrics)
    smoke: SmokeModel = field(default_factory=SmokeModel)

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ConfigError(f"must be >= 1, got {self.steps}", field="steps")
        if not self.checkpoint.dir:
            raise ConfigError("must be set (where the smoke workload saves its state)", field="checkpoint.dir")


def _hf_config(m: SmokeModel) -> dict:
    return dict(
        architectures=["LlamaForCausalLM"], model_type="llama", hidden_size=m.hidden, intermediate_size=2 * m.hidden,
        num_hidden_layers=m.layers, num_attention_heads=m.heads, num_key_value_heads=m.kv_heads, vocab_size=m.vocab,
        tie_word_embeddings=False, rope_theta=10000.0, max_position_embeddings=max(64, m.seq_len), rms_norm_eps=1e-5,
        hidden_act="silu",
    )


def read_checkpoint(ckpt_dir: Path) -> dict | None:
    path = ckpt_dir / CHECKPOINT_FILE
    if not path.is_file():
        return None
    try:
        state = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(f"not valid JSON: {err.msg}", path=path, line=err.lineno) from err
    for key in ("step", "loss_sum"):
        if key not in state:
            raise CheckpointError("missing key", path=path, field=key)
    return state


def _write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)  # a preempted write never leaves a half-written checkpoint


def run(cfg: SmokeConfig) -> int:
    import torch
    import torch.distributed as dist

    from megatron_toolrl.models import ModelConfig, ParallelConfig, arch_from_hf, build_model_chunks
    from megatron_toolrl.parallel import destroy_parallel, init_parallel
    from megatron_toolrl.train.signals import StopRequest

    stop = StopRequest()  # first: a signal during the (slow) megatron import must not be lost
    m = cfg.smoke
    parallel = ParallelConfig(tensor_parallel=m.tensor_parallel)
    init_parallel(parallel, seed=cfg.seed)
    rank, world = dist.get_rank(), dist.get_world_size()
    ckpt_dir = Path(cfg.checkpoint.dir)
    metrics_path = Path(cfg.metrics.dir or cfg.checkpoint.dir) / "metrics.jsonl"
    restart = int(os.environ.get("SLURM_RESTART_COUNT", "0"))
    try:
        arch = arch_from_hf(_hf_config(m))
        (model,) = build_model_chunks(arch, ModelConfig(parallel=parallel))
        model.eval()
        state = read_checkpoint(ckpt_dir) if cfg.checkpoint.resume else None
        start = state["step"] if state else 0
        loss_sum = float(state["loss_sum"]) if state else 0.0
        if rank == 0:
            ckpt_dir.mkdir(parents=True, exist_ok=True)
            metrics_path.parent.mkdir(parents=True, exist_ok=True)
            print(f"[smoke] world={world} tp={m.tensor_parallel} start_step={start} steps={cfg.steps} "
                  f"restart={restart}", flush=True)

        def save(step: int, status: str) -> None:
            if rank == 0:
                _write_json_atomic(ckpt_dir / CHECKPOINT_FILE, dict(
                    step=step, loss_sum=loss_sum, status=status, world_size=world,
                    tensor_parallel=m.tensor_parallel, restart=restart, time=time.time()))

        positions = torch.arange(m.seq_len).unsqueeze(0).expand(m.micro_batch, -1)
        step = start
        while step < cfg.steps:
            if stop.should_stop():
                save(step, "preempted")
                if rank == 0:
                    print(f"[smoke] stop signal ({stop.requested}): saved step {step}, exit {EXIT_CODE_PREEMPTED}",
                          flush=True)
                return EXIT_CODE_PREEMPTED
            step += 1
            gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
            tokens = torch.randint(0, m.vocab, (m.micro_batch, m.seq_len + 1), generator=gen)
            with torch.no_grad():
                per_token = model(tokens[:, :-1], positions, None, labels=tokens[:, 1:])  # (b, s) vocab-parallel CE
            loss = float(per_token.float().mean())
            loss_sum += loss
            if rank == 0:
                with metrics_path.open("a") as f:
                    f.write(json.dumps(dict(step=step, loss=loss, loss_sum=loss_sum, restart=restart,
                                            world_size=world, time=time.time())) + "\n")
                print(f"[smoke] step {step} loss {loss:.6f}", flush=True)
            interval = cfg.checkpoint.interval
            if (interval and step % interval == 0) or step == cfg.steps:
                save(step, "done" if step == cfg.steps else "running")
            if m.step_seconds > 0:
                time.sleep(m.step_seconds)
        return 0
    finally:
        stop.restore()
        destroy_parallel()


def main(argv: list[str] | None = None) -> int:
    import warnings

    # megatron-core warns about missing TransformerEngine/apex on every CPU run: noise in job logs.
    warnings.filterwarnings("ignore", message=".*(Transformer Engine|Apex|TransformerEngine).*")
    warnings.filterwarnings("ignore", message="full scope is deprecated")  # megatron-core 0.16.1's own default
    warnings.filterwarnings("ignore", category=FutureWarning)
    args = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in args):
        print(__doc__)
        return 0
    try:
        cfg = load_config(SmokeConfig, None, args)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return run(cfg)


if __name__ == "__main__":
    sys.exit(main())

"""Run metrics: one JSON line per step, TensorBoard scalars, and PNG curves at the end.

Only rank 0 writes. The JSONL file is the source of truth (plots and the resume check read it);
on resume, lines of steps after the checkpoint are dropped so the file never holds two versions
of a step.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# Curves a person looks at, grouped one panel each: (title, metric-name prefixes or names).
PLOT_PANELS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("reward (total and components)", ("reward/mean", "reward/component/")),
    ("accuracy", ("reward/correct", "eval/heldout_accuracy", "eval/bfcl_accuracy")),
    ("hard-sample pool", ("pool/in_pool", "pool/retired", "pool/round_")),
    ("KL / entropy", ("loss/approx_kl", "loss/kl_ref", "policy/entropy")),
    ("learning rate", ("optim/lr",)),
)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class MetricsWriter:
    """Appends step metrics to a JSONL file and, when available, TensorBoard."""

    def __init__(self, jsonl_path: str | Path, tensorboard_dir: str | Path | None = None, enabled: bool = True):
        self.path = Path(jsonl_path)
        self.enabled = enabled
        self._tb = None
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if tensorboard_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(log_dir=str(tensorboard_dir))

    def set_aside(self) -> Path | None:
        """A fresh run in a directory that holds an earlier run's metrics: keep those under a
        dated name (never mix two runs in one file, never delete one). Returns the new name."""
        if not self.enabled or not self.path.exists() or self.path.stat().st_size == 0:
            return None
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(self.path.stat().st_mtime))
        kept = self.path.with_name(f"{self.path.stem}.{stamp}{self.path.suffix}")
        n = 1
        while kept.exists():  # two runs within a second
            n += 1
            kept = self.path.with_name(f"{self.path.stem}.{stamp}-{n}{self.path.suffix}")
        self.path.rename(kept)
        return kept

    def truncate_after(self, step: int) -> None:
        """Drop lines of steps > `step` (a resumed run rewrites them)."""
        if not self.enabled or not self.path.exists():
            return
        kept = [line for line in self.path.read_text().splitlines() if line.strip() and json.loads(line).get("step", 0) <= step]
        self.path.write_text("".join(line + "\n" for line in kept))

    def log(self, step: int, metrics: Mapping[str, Any]) -> None:
        if not self.enabled:
            return
        record = {"step": step, **{k: v for k, v in metrics.items()}}
        with self.path.open("a") as f:
            f.write(json.dumps(record, sort_keys=True, default=float) + "\n")
        if self._tb is not None:
            for name, value in metrics.items():
                if _finite(value):
                    self._tb.add_scalar(name, value, step)
            self._tb.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


SFT_SUFFIX = "_after_sft"
"""Step-0 evaluations of the SFT warm-started policy carry this suffix (train/loop.py)."""


def plot_metrics(jsonl_path: str | Path, png_path: str | Path, title: str = "") -> Path | None:
    """One PNG with a panel per group of PLOT_PANELS that has data. Returns the path, or None."""
    records = read_metrics(jsonl_path)
    if not records:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted({k for r in records for k, v in r.items() if k != "step" and _finite(v)})
    panels = []
    for panel_title, prefixes in PLOT_PANELS:
        chosen = [n for n in names if any(n == p or n.startswith(p) for p in prefixes)]
        if chosen:
            panels.append((panel_title, chosen))
    if not panels:
        return None
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 2.6 * len(panels)), squeeze=False)
    for ax, (panel_title, chosen) in zip(axes[:, 0], panels):
        for name in chosen:
            if name.endswith(SFT_SUFFIX):
                continue  # drawn as the start of its base series below
            points = [(r["step"], r[name]) for r in records if _finite(r.get(name))]
            after_sft = [(r["step"], r[name + SFT_SUFFIX]) for r in records if _finite(r.get(name + SFT_SUFFIX))]
            if after_sft and points and points[0][0] == 0:
                # With an SFT warm start, step 0 has two evaluations: the released model (a lone
                # marker) and the warm-started policy GRPO starts from (the line's first point).
                ax.plot([0], [points[0][1]], marker="o", fillstyle="none", linestyle="none", label=f"{name} (released model)")
                points = after_sft[:1] + points[1:]
                name = f"{name} (from SFT warm start)"
            if points:
                xs, ys = zip(*points)
                ax.plot(xs, ys, marker="." if len(points) < 40 else None, label=name)
        ax.set_title(panel_title, fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    png_path = Path(png_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png_path, dpi=110)
    plt.close(fig)
    return png_path

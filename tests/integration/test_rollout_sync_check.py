"""`megatron-toolrl sync-check` end to end: a TP=2 megatron model (torchrun, gloo) pushes its
perturbed weights through the bridge export and the gloo weight-sync group into a vLLM server."""

from __future__ import annotations

import json

import pytest

from pathlib import Path

from tests.helpers import run_torchrun
from tests.integration.dist_scripts.rollout_common import require_model, write_tiny_llama

pytestmark = [pytest.mark.vllm, pytest.mark.torchrun, pytest.mark.slow]

SCRIPT = Path(__file__).parent / "dist_scripts" / "rollout_sync_check.py"


def test_tp2_megatron_to_vllm_server_over_gloo(tmp_path):
    require_model()  # the tiny model borrows SmolLM2's tokenizer
    hf_dir = write_tiny_llama(tmp_path / "tiny_llama")
    out = run_torchrun(
        SCRIPT, 2,
        "--hf-dir", str(hf_dir), "--tp", "2", "--mode", "server", "--transport", "dist",
        "--noise", "0.1", "--bucket-mib", "4",
        timeout=900,
    )
    result = json.loads(out.strip().splitlines()[-1])
    assert result["ok"] is True and result["tp"] == 2 and result["transport"] == "dist"
    # Before the push the engine held the HF weights and the trainer the perturbed ones: the
    # check must see that, or agreement afterwards would prove nothing.
    assert result["before_push_mean_abs_diff"] > 0.05
    assert result["mean_abs_diff"] < 1e-3 and result["max_abs_diff"] < 5e-2
    # Every tensor of the tied model (no separate lm_head) crossed: 4 layers x 9 + embedding + final norm.
    assert result["num_tensors"] == 4 * 9 + 2
    assert result["sync_seconds"] > 0

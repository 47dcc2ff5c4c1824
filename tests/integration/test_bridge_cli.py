"""The converter CLIs end to end on a tiny Qwen3 (untied, GQA, head_dim*heads != hidden):
hf_to_mcore at TP=2 (relaunched under torchrun), mcore_to_hf in one process (resharding),
verify.py, and clear failures on damaged or wrong input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from megatron_toolrl.bridge import load_megatron_checkpoint, read_checkpoint_meta, read_hf_state, write_hf_checkpoint
from megatron_toolrl.bridge.mcore_ckpt import META_FILE
from megatron_toolrl.errors import CheckpointError
from megatron_toolrl.parallel import single_process_parallel
from tests.helpers import REPO
from tests.integration.dist_scripts.bridge_tiny_models import CASES, VOCAB, fixed_batch, hf_logits, save_tiny

pytestmark = pytest.mark.torchrun  # hf_to_mcore --tp 2 relaunches itself under torchrun

CONV = REPO / "checkpoints_conv"
CASE = next(c for c in CASES if c.family == "qwen3" and not c.tied)
TEMPLATE = (REPO / "megatron_toolrl" / "prompts" / "templates" / "hermes_tools.jinja").read_text()


# Rendezvous variables a process-local megatron set-up (single_process_parallel) leaves in
# os.environ; a CLI started from this process must not inherit them.
_RENDEZVOUS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def run_cli(script: str, *args: str, expect: int | None = 0) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in _RENDEZVOUS}
    proc = subprocess.run([sys.executable, str(CONV / script), *args], capture_output=True, text=True,
                          cwd=REPO, timeout=300, env={**env, "OMP_NUM_THREADS": "1"})
    if expect is not None and proc.returncode != expect:
        raise AssertionError(f"{script} {' '.join(args)} exited {proc.returncode}, expected {expect}\n"
                             f"--- stdout ---\n{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-4000:]}")
    return proc


def save_tiny_tokenizer(out_dir: Path) -> None:
    """A word-level tokenizer over the tiny vocabulary, with the Hermes chat template."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "<|im_start|>": 1, "<|im_end|>": 2, **{f"w{i}": i for i in range(3, VOCAB)}}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", bos_token="<|im_start|>",
                                        eos_token="<|im_end|>")
    tokenizer.chat_template = TEMPLATE
    tokenizer.save_pretrained(out_dir)


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> dict[str, Path]:
    """The tiny HF model, converted to a TP=2 checkpoint and released back to HF (sharded)."""
    root = tmp_path_factory.mktemp("cli")
    hf_dir = save_tiny(CASE, root / "hf")
    save_tiny_tokenizer(hf_dir)
    ckpt, release = root / "mcore", root / "release"
    run_cli("hf_to_mcore.py", "--hf-dir", str(hf_dir), "--out-dir", str(ckpt), "--tp", "2")
    run_cli("mcore_to_hf.py", "--mcore-dir", str(ckpt), "--out-dir", str(release), "--max-shard-size", "200KB")
    return {"root": root, "hf": hf_dir, "ckpt": ckpt, "release": release}


def test_checkpoint_records_architecture_layout_and_assets(work):
    meta = read_checkpoint_meta(work["ckpt"])
    assert (meta.tensor_parallel, meta.pipeline_parallel, meta.padded_vocab_size) == (2, 1, 512)
    assert meta.arch().family == "qwen3" and meta.source == str(work["hf"])
    assert (work["ckpt"] / "hf_assets" / "tokenizer.json").is_file()
    assert len(list(work["ckpt"].glob("*.distcp"))) >= 2


def test_release_is_bit_exact_and_loads_in_transformers(work):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    release = work["release"]
    index = json.loads((release / "model.safetensors.index.json").read_text())
    files = sorted(set(index["weight_map"].values()))
    assert len(files) > 1 and not (release / "model.safetensors").exists()
    released = {k: v for f in files for k, v in load_file(str(release / f)).items()}
    original = dict(read_hf_state(work["hf"]))
    assert sorted(released) == sorted(original)
    for name in original:
        assert torch.equal(released[name], original[name]), name

    ids = fixed_batch()
    assert torch.equal(hf_logits(release, ids), hf_logits(work["hf"], ids))
    model = AutoModelForCausalLM.from_pretrained(release)
    assert type(model).__name__ == "Qwen3ForCausalLM"
    tokenizer = AutoTokenizer.from_pretrained(release)
    assert tokenizer.chat_template == TEMPLATE
    assert json.loads((release / "generation_config.json").read_text())["eos_token_id"] == 2


def test_verify_prints_json_and_exits_0(work):
    proc = run_cli("verify.py", "--hf-dir", str(work["hf"]), "--mcore-dir", str(work["ckpt"]))
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["ok"] is True and result["max_abs_diff"] < 1e-4 and result["mean_abs_diff"] <= result["max_abs_diff"]


def test_verify_exits_1_against_other_weights(work):
    other = save_tiny(CASE, work["root"] / "other", seed=5)
    proc = run_cli("verify.py", "--hf-dir", str(other), "--mcore-dir", str(work["ckpt"]), expect=1)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["ok"] is False and result["max_abs_diff"] > 1e-2


def test_garbage_metadata_fails_with_file_line_and_exit_2(work, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(work["ckpt"], broken)
    (broken / META_FILE).write_text("{\n  this is not json\n")
    proc = run_cli("mcore_to_hf.py", "--mcore-dir", str(broken), "--out-dir", str(tmp_path / "out"), expect=2)
    last = proc.stderr.strip().splitlines()[-1]
    assert last == f"error: CheckpointError: {broken / META_FILE}:2: not valid JSON: Expecting property name " \
                   "enclosed in double quotes"
    assert not (tmp_path / "out").exists()


def test_checkpoint_missing_a_shard_file_names_it(work, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(work["ckpt"], broken)
    missing = sorted(broken.glob("*.distcp"))[0]
    missing.unlink()
    with single_process_parallel():
        with pytest.raises(CheckpointError, match=f"{broken}: cannot load the megatron checkpoint: .*"
                                                  f"No such file or directory: '{missing}'"):
            load_megatron_checkpoint(broken)


def test_damaged_metadata_is_named(work, tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint directory"):
        read_checkpoint_meta(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="not a megatron distributed checkpoint"):
        read_checkpoint_meta(tmp_path / "empty")

    ckpt = tmp_path / "ckpt"
    shutil.copytree(work["ckpt"], ckpt, ignore=shutil.ignore_patterns("*.distcp"))
    meta_path = ckpt / META_FILE
    good = json.loads(meta_path.read_text())
    meta_path.unlink()
    with pytest.raises(CheckpointError, match=f"no {META_FILE}: the checkpoint does not say which architecture"):
        read_checkpoint_meta(ckpt)
    meta_path.write_text('{\n "hf_config": {,\n}')
    with pytest.raises(CheckpointError, match=f"{META_FILE}:2: not valid JSON"):
        read_checkpoint_meta(ckpt)
    meta_path.write_text(json.dumps({**good, "tp": 2}))
    with pytest.raises(CheckpointError, match=f"{META_FILE}: field 'tp': unknown key"):
        read_checkpoint_meta(ckpt)
    meta_path.write_text(json.dumps({k: v for k, v in good.items() if k != "padded_vocab_size"}))
    with pytest.raises(CheckpointError, match="field 'padded_vocab_size': missing"):
        read_checkpoint_meta(ckpt)
    meta_path.write_text(json.dumps({**good, "params_dtype": "fp64"}))
    with pytest.raises(CheckpointError, match=r"field 'params_dtype': 'fp64' is not one of \['fp32', 'bf16', 'fp16'\]"):
        read_checkpoint_meta(ckpt)
    meta_path.write_text(json.dumps({**good, "padded_vocab_size": "512"}))
    with pytest.raises(CheckpointError, match="field 'padded_vocab_size': expected a positive integer, got '512'"):
        read_checkpoint_meta(ckpt)
    meta_path.write_text(json.dumps({**good, "hf_config": {**good["hf_config"], "architectures": ["GPT2LMHeadModel"]}}))
    with pytest.raises(CheckpointError, match=r"field 'hf_config': unknown architecture \['GPT2LMHeadModel'\]"):
        read_checkpoint_meta(ckpt)


def test_writer_single_file_when_small(work, tmp_path):
    from transformers import AutoModelForCausalLM

    state = dict(read_hf_state(work["hf"]))
    config = json.loads((work["hf"] / "config.json").read_text())
    written = write_hf_checkpoint([list(state.items())[:5], list(state.items())[5:]], tmp_path, config,
                                  tokenizer_dir=work["hf"])
    assert "model.safetensors" in written and "tokenizer.json" in written
    assert not (tmp_path / "model.safetensors.index.json").exists()
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path).state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())

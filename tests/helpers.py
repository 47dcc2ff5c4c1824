"""Test utilities shared across test modules: launching torchrun ranks, locating artifacts."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "artifacts"
SMOLLM2_DIR = ARTIFACTS / "smollm2-135m-instruct"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_torchrun(script: str | Path, nproc: int, *args: str, timeout: float = 600, env: dict[str, str] | None = None) -> str:
    """Run `script` under torchrun with `nproc` gloo ranks on this machine; return its stdout.

    Fails the calling test with the ranks' output when the run fails or times out.
    """
    full_env = dict(os.environ)
    full_env.update(env or {})
    full_env.setdefault("OMP_NUM_THREADS", "1")
    full_env["PYTHONPATH"] = os.pathsep.join([str(REPO), full_env.get("PYTHONPATH", "")])
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
        f"--master-port={free_port()}", str(script), *args,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env, cwd=REPO)
    if proc.returncode != 0:
        raise AssertionError(
            f"torchrun {Path(script).name} {' '.join(args)} exited {proc.returncode}\n"
            f"--- stdout ---\n{proc.stdout[-8000:]}\n--- stderr ---\n{proc.stderr[-8000:]}"
        )
    return proc.stdout


def make_tiny_chat_model(out_dir: Path, *, hidden: int = 128, layers: int = 2, vocab_size: int = 1024, seed: int = 0) -> Path:
    """A tiny random Llama with a small byte-level BPE tokenizer (trained here on synthetic tool
    prompts) and SmolLM2's chat template, saved as an HF folder that transformers and vLLM load.

    A stand-in policy for fast end-to-end trainer tests: with a 1k vocabulary the logits cost
    nothing, so a GRPO step takes seconds on 2 cores. Needs artifacts/smollm2-135m-instruct for
    the chat template (`make model`).
    """
    import json
    import random

    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from megatron_toolrl.data.synthetic import generate_tasks
    from megatron_toolrl.toolcall import OutputFormat, render_calls

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    corpus = []
    for task in generate_tasks(300, seed=12345):
        corpus.append(json.dumps(task.tools) + " " + task.messages[-1]["content"])
        corpus.append(render_calls(task.reference_answer(), OutputFormat.HERMES) if task.ground_truth else "")
    corpus += ["You are a helpful assistant. # Tools <tools></tools> <tool_call></tool_call> <think></think> system user assistant"]
    bpe = Tokenizer(models.BPE(unk_token=None))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator(random.Random(seed).sample(corpus, len(corpus)), trainer=trainer)
    chat_template = (SMOLLM2_DIR / "chat_template.jinja").read_text()
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                  pad_token="<|im_end|>", unk_token="<|endoftext|>")
    tok.chat_template = chat_template
    tok.save_pretrained(out_dir)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
        # head_dim 64: vLLM's CPU attention kernels need head_dim >= 32.
        num_attention_heads=hidden // 64, num_key_value_heads=1, max_position_embeddings=4096, rms_norm_eps=1e-5,
        rope_theta=10000.0, tie_word_embeddings=True, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    LlamaForCausalLM(config).to(torch.float32).save_pretrained(out_dir)
    return out_dir


TEST_MODEL_CACHE = REPO / ".cache" / "test-models"

# Tasks the tiny warm model was trained on (tiny_warm_model(TINY_TASK_OVERRIDES)).
TINY_TASK_OVERRIDES = ["data.max_tools=1", "data.categories=[single]", "data.domains=[weather,finance]", "prompt.format=hermes"]

# Overrides of examples/quickstart_cpu.yaml that make the trainer run the tiny warm model in
# seconds per step (add hf_dir, steps and the directories). fp32 end to end: a resumed run
# must equal the straight one exactly. No spaces inside a value: the SLURM scripts' OVERRIDES
# variable splits on them.
TINY_TRAIN_OVERRIDES = [
    "metrics.tensorboard=false", "grpo.prompts_per_step=4", "grpo.group_size=4", "grpo.micro_batch_size=8",
    "rollout.max_new_tokens=40", "rollout.kv_cache_gib=1", "data.num_train=16", "data.num_eval=4",
    "eval.bfcl_categories=[]", "eval.at_start=false", "eval.at_end=false", "metrics.plot=false",
    "hard_sampling.judge_rollouts=4", "optimizer.lr=1e-3", "data.irrelevance_rate=0.0", "sft.steps=0",
    "model.precision.params_dtype=fp32", "rollout.dtype=float32", *TINY_TASK_OVERRIDES,
]


def tiny_warm_model(overrides: list[str], sft_steps: int = 150, cache_key: str = "tiny-weather-v1") -> Path:
    """The tiny chat model after an SFT warm start on synthetic tasks rendered as the trainer
    renders them, cached under .cache/test-models/<cache_key> (built once per machine).

    The warm start is plain HF transformers + torch AdamW: it only prepares a policy that emits
    well-formed calls some of the time, so that GRPO rewards vary within groups.
    """
    import random
    import shutil

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from megatron_toolrl.config import load_config
    from megatron_toolrl.data.synthetic import generate_tasks
    from megatron_toolrl.train.config import TrainConfig
    from megatron_toolrl.train.sft import sft_batch, sft_example

    out = TEST_MODEL_CACHE / cache_key
    if (out / "model.safetensors").exists():
        return out
    tmp = out.with_suffix(".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    make_tiny_chat_model(tmp)
    cfg = load_config(TrainConfig, None, [f"hf_dir={tmp}", *overrides])
    tok = AutoTokenizer.from_pretrained(tmp)
    model = AutoModelForCausalLM.from_pretrained(tmp, dtype=torch.float32)
    d = cfg.data
    tasks = generate_tasks(512, d.seed + 99, categories=d.categories, irrelevance_rate=0.0, max_tools=d.max_tools,
                           max_calls=d.max_calls, domains=d.domains)
    examples = [sft_example(t, tok, cfg) for t in tasks]
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    rng = random.Random(0)
    torch.manual_seed(0)
    for _ in range(sft_steps):
        batch = sft_batch(rng.sample(examples, 8), tok.pad_token_id)
        logits = model(batch.input_ids).logits[:, :-1].float()
        logp = torch.log_softmax(logits, -1).gather(-1, batch.input_ids[:, 1:, None]).squeeze(-1)
        loss = -(logp * batch.loss_mask[:, 1:]).sum() / batch.loss_mask[:, 1:].sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.save_pretrained(tmp)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out

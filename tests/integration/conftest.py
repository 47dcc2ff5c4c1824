"""Fixtures shared by the rollout engine tests (in-process and server)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def ref():
    """HF transformers' SmolLM2-135M (fp32): the reference the engines' outputs are checked against."""
    from megatron_toolrl.rollout.hf_reference import HFReference
    from tests.integration.dist_scripts.rollout_common import MODEL_DIR

    return HFReference(MODEL_DIR)


@pytest.fixture(scope="module")
def original(ref):
    """The model's weights before any push, to restore or perturb."""
    return ref.named_weights()

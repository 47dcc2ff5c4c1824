"""MegatronPolicy under TP, DP and PP against the single-rank run, and its checkpoints.

Three torchrun launches (dist_scripts/policy_*.py) run every scenario; this module compares
their RESULT lines. The single-rank launch is the independent reference: the same seed gives the
same model at every TP layout, and the PP runs load its initial weights through a checkpoint
(megatron initialises a pipeline stage's layers from that stage's own RNG draws).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
import torch

from tests.helpers import run_torchrun
from tests.integration.dist_scripts.policy_common import make_batch, parse_results

pytestmark = [pytest.mark.torchrun, pytest.mark.slow]

SCRIPTS = Path(__file__).parent / "dist_scripts"
FP32_TOL = 1e-5


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("policy")


@pytest.fixture(scope="module")
def reference(workdir: Path) -> dict:
    return parse_results(run_torchrun(SCRIPTS / "policy_reference.py", 1, str(workdir)))


@pytest.fixture(scope="module")
def tp_dp(reference: dict, workdir: Path) -> dict:
    return parse_results(run_torchrun(SCRIPTS / "policy_tp_dp.py", 2, str(workdir)))


@pytest.fixture(scope="module")
def pp(tp_dp: dict, workdir: Path) -> dict:
    # Needs the reference's init checkpoints and tp_dp's TP=2 checkpoint.
    return parse_results(run_torchrun(SCRIPTS / "policy_pp.py", 2, str(workdir)))


def _close(a, b, tol: float = FP32_TOL) -> None:
    as64 = partial(torch.as_tensor, dtype=torch.float64)
    torch.testing.assert_close(as64(a), as64(b), atol=tol, rtol=0)


def test_vocab_parallel_functions_under_tp2(tp_dp: dict) -> None:
    # Includes a vocabulary whose whole second shard is padding.
    for case, diffs in tp_dp["tp2_functions"].items():
        assert diffs["logprobs"] < FP32_TOL, case
        assert diffs["entropy"] < FP32_TOL, case
        assert diffs["grad"] < FP32_TOL, case


def test_tp2_logprobs_and_training_equal_tp1(reference: dict, tp_dp: dict) -> None:
    ref, tp2 = reference["reference_untied"], tp_dp["tp2"]
    _close(tp2["logprobs"], ref["logprobs"])
    _close(tp2["losses"], ref["losses"])
    _close(tp2["grad_norms"], ref["grad_norms"])
    _close(tp2["entropy"], ref["entropy"])
    _close(tp2["logprobs_after"], ref["logprobs_after"])
    assert ref["losses"][2] < ref["losses"][0] - 0.3  # the steps did train
    # The exponential schedule with 2 warmup steps: lr0/2, lr0, lr0 * 0.8^0.
    assert tp2["lrs"] == pytest.approx([0.005, 0.01, 0.01])


def test_padded_vocab_rows_get_no_mass(reference: dict) -> None:
    # logprobs computed from the true-vocabulary logits alone (the HF model has no padded rows).
    logits = torch.tensor(reference["reference_untied"]["logits_true_vocab"], dtype=torch.float64)
    ids = make_batch().input_ids
    expected = torch.log_softmax(logits[:, :-1], -1).gather(-1, ids[:, 1:, None]).squeeze(-1)
    _close(torch.tensor(reference["reference_untied"]["logprobs"])[:, 1:], expected)


def test_lm_head_over_responses_only_trains_like_the_full_head(reference: dict) -> None:
    # The reference runs train with the head skipped over each micro-batch's prompt prefix; the
    # same steps with the head over every position must give the same run.
    windowed, full = reference["reference_untied"], reference["full_head"]
    _close(windowed["losses"], full["losses"])
    _close(windowed["grad_norms"], full["grad_norms"])
    _close(windowed["entropy"], full["entropy"])
    _close(windowed["logprobs_after"], full["logprobs_after"])
    # masked_only logprobs: right wherever the mask is set, 0 before the micro-batch's first
    # masked token, and the full head's policy ignores the flag.
    mask = make_batch().loss_mask.bool()
    masked = torch.tensor(windowed["masked_logprobs_after"])
    _close(masked[mask], torch.tensor(full["logprobs_after"])[mask])
    assert torch.all(masked[:, :2] == 0) and torch.any(torch.tensor(full["logprobs_after"])[:, 1:2] != 0)
    _close(full["masked_logprobs_after"], full["logprobs_after"], tol=0)


def test_dp2_half_batches_equal_dp1_full_batch(reference: dict, tp_dp: dict) -> None:
    ref = reference["reference_untied"]
    for optimizer in ("plain", "distopt"):
        run = tp_dp["dp2"][optimizer]
        _close(run["losses"], ref["losses"])
        _close(run["grad_norms"], ref["grad_norms"])


def test_resume_at_same_layout_continues_the_run(tp_dp: dict) -> None:
    tp2 = tp_dp["tp2"]
    assert tp2["resumed_extra"] == {"step": 3, "note": "tp2"}
    assert tp2["resumed_lrs"] == tp2["continued_lrs"]
    _close(tp2["resumed_losses"], tp2["continued_losses"], tol=1e-7)
    _close(tp2["resumed_logprobs"], tp2["continued_logprobs"], tol=1e-7)
    # Control: without the optimizer state the first update after loading goes elsewhere.
    weights_only = tp2["weights_only_losses"]
    assert weights_only[0] == pytest.approx(tp2["continued_losses"][0], abs=1e-7)
    assert abs(weights_only[1] - tp2["continued_losses"][1]) > 1e-3


def test_distributed_optimizer_resumes_and_reshards_dp2_to_tp2(tp_dp: dict) -> None:
    dp2, tp2 = tp_dp["dp2"], tp_dp["tp2"]
    _close(dp2["distopt"]["resumed_losses"], dp2["distopt"]["continued_losses"], tol=1e-7)
    _close(dp2["distopt"]["continued_losses"], tp2["continued_losses"])
    _close(dp2["distopt_dp2_to_tp2_losses"], tp2["continued_losses"])


@pytest.mark.parametrize("layout", ["pp2", "pp2_vpp2", "pp2_tied"])
def test_pp2_training_equals_pp1(reference: dict, pp: dict, layout: str) -> None:
    ref = reference["reference_tied" if layout == "pp2_tied" else "reference_untied"]
    run = pp["pp_reference"][layout]
    _close(run["logprobs"], ref["logprobs"])
    _close(run["losses"], ref["losses"])
    _close(run["grad_norms"], ref["grad_norms"])
    _close(run["entropy"], ref["entropy"])
    assert run["same_on_all_ranks"]


def test_tp2_checkpoint_loads_at_tp1_and_pp2(tp_dp: dict, pp: dict) -> None:
    tp2, resharded = tp_dp["tp2"], pp["tp2_resharded"]
    logit_diff = (torch.tensor(resharded["tp1_dp2"]["logits"]) - torch.tensor(tp2["logits_after"])).abs().max()
    assert logit_diff < 1e-6
    assert resharded["pp2"]["extra"] == {"step": 3, "note": "tp2"}
    _close(resharded["pp2"]["logprobs"], tp2["logprobs_after"], tol=1e-6)
    # Optimizer state resharded too: the update after loading is the original run's.
    _close(resharded["pp2"]["losses"], tp2["continued_losses"])
    _close(resharded["pp2"]["logprobs_after"], tp2["continued_logprobs"])
    _close(resharded["tp1_dp2"]["losses"], tp2["continued_losses"])


def test_optimizer_state_of_another_kind_is_refused(pp: dict, workdir: Path) -> None:
    message = pp["tp2_resharded"]["kind_mismatch"]
    assert message.startswith(str(workdir / "dp2_distopt_step3"))
    assert "layout.use_distributed_optimizer" in message and "load_optimizer=False" in message


def test_bf16_params_train_with_fp32_master_weights(reference: dict) -> None:
    bf16 = reference["bf16"]
    assert bf16["optimizer"] == "Float16OptimizerWithFloat16Params"
    assert bf16["model_dtypes"] == ["torch.bfloat16"]  # norms too, as Float16Module / TE give
    assert bf16["main_dtypes"] == ["torch.float32"]
    assert bf16["num_main"] == bf16["num_model"] == bf16["changed"]
    assert bf16["update_successful"] == [True, True]
    assert bf16["logprobs_dtype"] == "torch.float32"
    # Same trajectory as fp32 up to bf16 rounding.
    _close(bf16["losses"], reference["reference_untied"]["losses"][:2], tol=2e-2)
    # The bf16 run checkpoints (model + fp32 master weights + Adam) and resumes bit-exactly.
    assert reference["bf16_resume"]["resumed"] == reference["bf16_resume"]["continued"]


def test_bad_checkpoints_raise_checkpoint_error(reference: dict, workdir: Path) -> None:
    cases = reference["bad_checkpoints"]
    expected = {
        "missing": "no checkpoint directory",
        "no_state": "policy_state.json is missing",
        "bad_json": "policy_state.json:2: not valid JSON",
        "no_mcore_metadata": "not a megatron distributed checkpoint",
        "no_shards": "No such file or directory",
        "truncated_shards": "cannot load the sharded state",
        "killed_save": "an unfinished save left killed.tmp",
        "not_json_extra": "field 'extra': extra state is not JSON-serialisable",
    }
    for case, fragment in expected.items():
        assert cases[case].startswith(str(workdir)), (case, cases[case])
        assert fragment in cases[case], (case, cases[case])
    assert cases["not_json_dirs"] == []  # nothing written


def test_saving_over_a_checkpoint_replaces_it(reference: dict) -> None:
    overwrite = reference["overwrite"]
    assert overwrite["extra"] == {"version": 2}
    assert overwrite["dirs"] == ["overwritten"]
    assert overwrite["logprobs_max_diff"] == 0.0
    assert overwrite["scheduler_steps"] == 1

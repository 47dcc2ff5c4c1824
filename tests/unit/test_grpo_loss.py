"""Advantages and policy-loss variants against values worked out by hand."""

import math

import pytest
import torch

from megatron_toolrl.errors import ConfigError
from megatron_toolrl.grpo.advantages import group_advantages, groups_with_signal
from megatron_toolrl.grpo.loss import PolicyLossConfig, aggregate, kl_penalty, policy_loss


def test_mean_std_advantages_by_hand():
    # group [1, 0, 0, 1]: mean 0.5, unbiased std sqrt(((.5^2)*4)/3) = sqrt(1/3)
    adv = group_advantages(torch.tensor([1.0, 0.0, 0.0, 1.0, 2.0, 2.0, 2.0, 2.0]), 4, "mean_std", eps=0.0)
    s = math.sqrt(1 / 3)
    torch.testing.assert_close(adv[:4], torch.tensor([0.5 / s, -0.5 / s, -0.5 / s, 0.5 / s]))
    # an all-equal group: zero advantage, not NaN (eps=0 makes 0/0 -> guard below uses eps)
    adv = group_advantages(torch.tensor([2.0, 2.0, 2.0, 2.0]), 4, "mean_std")
    assert torch.equal(adv, torch.zeros(4))


def test_dr_grpo_and_leave_one_out_by_hand():
    r = torch.tensor([3.0, 1.0, 2.0])
    torch.testing.assert_close(group_advantages(r, 3, "mean"), torch.tensor([1.0, -1.0, 0.0]))
    # RLOO: 3 - mean(1,2) = 1.5; 1 - mean(3,2) = -1.5; 2 - mean(3,1) = 0
    torch.testing.assert_close(group_advantages(r, 3, "leave_one_out"), torch.tensor([1.5, -1.5, 0.0]))


def test_advantage_shape_errors():
    with pytest.raises(ValueError, match="do not split"):
        group_advantages(torch.zeros(5), 2)
    with pytest.raises(ValueError, match="group_size >= 2"):
        group_advantages(torch.zeros(3), 1, "mean_std")


def test_groups_with_signal():
    r = torch.tensor([0.0, 0.0, 1.0, 0.0, 0.5, 0.5])
    assert groups_with_signal(r, 2).tolist() == [False, True, False]


def _one_token(ratio: float, adv: float, cfg: PolicyLossConfig) -> float:
    lp = torch.tensor([[math.log(ratio)]])
    loss, _ = policy_loss(lp, torch.zeros(1, 1), torch.tensor([adv]), torch.ones(1, 1), cfg, num_tokens=1, num_seqs=1)
    return loss.item()


@pytest.mark.parametrize(
    "ratio, adv, expected",
    [
        (1.5, 1.0, -1.28),   # positive advantage, ratio above 1+eps_high: clipped at 1.28
        (1.1, 1.0, -1.1),    # inside the trust region: unclipped
        (0.5, 1.0, -0.5),    # ratio below 1-eps_low with A>0: max(-0.5, -0.8) = -0.5 (no clip)
        (0.5, -1.0, 0.8),    # A<0, ratio below 1-eps_low: max(0.5, 0.8) = 0.8 (clipped)
        (2.0, -1.0, 2.0),    # A<0, ratio high: max(2.0, 1.28) = 2.0 (pessimistic, unclipped)
    ],
)
def test_clip_higher_by_hand(ratio, adv, expected):
    assert _one_token(ratio, adv, PolicyLossConfig(eps_low=0.2, eps_high=0.28)) == pytest.approx(expected, abs=1e-6)


def test_dual_clip_bounds_negative_advantages():
    cfg = PolicyLossConfig(eps_low=0.2, eps_high=0.28, dual_clip_c=3.0)
    # A=-1, ratio 5: PPO gives max(5, 1.28) = 5; dual clip caps at c * |A| = 3
    assert _one_token(5.0, -1.0, cfg) == pytest.approx(3.0)
    # positive advantages are unaffected
    assert _one_token(5.0, 1.0, cfg) == pytest.approx(-1.28)


def test_kl_estimators_by_hand():
    lp, ref = torch.tensor([0.0, -1.0]), torch.tensor([-0.5, -1.0])
    torch.testing.assert_close(kl_penalty(lp, ref, "k1"), torch.tensor([0.5, 0.0]))
    # k3 = exp(ref-lp) - (ref-lp) - 1: exp(-0.5) + 0.5 - 1
    torch.testing.assert_close(kl_penalty(lp, ref, "k3"), torch.tensor([math.exp(-0.5) - 0.5, 0.0]))
    big = kl_penalty(torch.tensor([-30.0]), torch.tensor([0.0]), "low_var_kl")
    assert big.item() == 10.0  # clamped


def test_kl_term_added_with_coefficient():
    cfg = PolicyLossConfig(kl_coef=0.1, kl_estimator="k1")
    lp = torch.tensor([[0.0]])
    loss, metrics = policy_loss(lp, lp, torch.tensor([1.0]), torch.ones(1, 1), cfg, 1, 1, ref_logprobs=torch.tensor([[-2.0]]))
    # pg = -1 * 1 = -1; kl k1 = 0 - (-2) = 2; L = -1 + 0.1 * 2 = -0.8
    assert loss.item() == pytest.approx(-0.8)
    assert metrics["kl_ref_sum"].item() == pytest.approx(2.0)
    with pytest.raises(ValueError, match="ref_logprobs"):
        policy_loss(lp, lp, torch.tensor([1.0]), torch.ones(1, 1), cfg, 1, 1)


def test_aggregations_by_hand():
    per_token = torch.tensor([[1.0, 2.0, 3.0], [4.0, 0.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    # token-mean: (1+2+3+4)/4 = 2.5
    assert aggregate(per_token, mask, "token-mean", 4, 2).item() == pytest.approx(2.5)
    # seq-mean-token-mean: (6/3 + 4/1)/2 = 3
    assert aggregate(per_token, mask, "seq-mean-token-mean", 4, 2).item() == pytest.approx(3.0)
    # seq-mean-token-sum-norm with T_norm=5: 10 / (2*5) = 1
    assert aggregate(per_token, mask, "seq-mean-token-sum-norm", 4, 2, norm_length=5).item() == pytest.approx(1.0)


def test_microbatch_split_sums_to_full_batch_loss():
    """With global counts passed in, the loss of two halves adds up to the loss of the whole."""
    g = torch.Generator().manual_seed(0)
    lp = torch.randn(4, 6, generator=g) * 0.1 - 1.0
    old = lp + torch.randn(4, 6, generator=g) * 0.2
    adv = torch.tensor([1.0, -0.5, 0.3, -1.2])
    mask = (torch.rand(4, 6, generator=g) > 0.3).float()
    for agg in ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm"):
        cfg = PolicyLossConfig(aggregation=agg, norm_length=6)
        n_tok, n_seq = mask.sum().item(), 4
        full, _ = policy_loss(lp, old, adv, mask, cfg, n_tok, n_seq)
        a, _ = policy_loss(lp[:2], old[:2], adv[:2], mask[:2], cfg, n_tok, n_seq)
        b, _ = policy_loss(lp[2:], old[2:], adv[2:], mask[2:], cfg, n_tok, n_seq)
        torch.testing.assert_close(a + b, full)


def test_masked_tokens_do_not_count_and_gradient_flows():
    lp = torch.tensor([[-1.0, -1.0]], requires_grad=True)
    loss, metrics = policy_loss(lp, torch.tensor([[-1.0, -5.0]]), torch.tensor([1.0]), torch.tensor([[1.0, 0.0]]),
                                PolicyLossConfig(), num_tokens=1, num_seqs=1)
    loss.backward()
    # on-policy token (ratio 1): d(-A r)/d lp = -A r = -1; the masked token gets no gradient
    torch.testing.assert_close(lp.grad, torch.tensor([[-1.0, 0.0]]))
    assert metrics["tokens"].item() == 1.0


def test_config_validation_names_the_field():
    with pytest.raises(ConfigError, match="loss.eps_low"):
        PolicyLossConfig(eps_low=1.5)
    with pytest.raises(ConfigError, match="loss.norm_length"):
        PolicyLossConfig(aggregation="seq-mean-token-sum-norm")
    with pytest.raises(ConfigError, match="loss.dual_clip_c"):
        PolicyLossConfig(dual_clip_c=0.5)

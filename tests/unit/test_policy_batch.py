"""TokenBatch validation, micro-batching and DP sharding; OptimizerSettings validation (pure)."""

from __future__ import annotations

import pytest
import torch

from megatron_toolrl.errors import ConfigError
from megatron_toolrl.policy.batch import TokenBatch, local_token_counts
from megatron_toolrl.policy.optimizer import OptimizerSettings


def _batch(b: int = 4, t: int = 6) -> TokenBatch:
    ids = torch.arange(b * t).reshape(b, t)
    mask = torch.zeros(b, t)
    mask[:, 2:] = 1
    mask[0, 4:] = 0  # a shorter, right-padded row
    return TokenBatch(input_ids=ids, loss_mask=mask, advantages=torch.randn(b, t))


def test_split_and_shard_keep_rows_together() -> None:
    batch = _batch()
    micro = batch.split(2)
    assert [m.input_ids[:, 0].tolist() for m in micro] == [[0, 6], [12, 18]]
    assert torch.equal(micro[1].advantages, batch.advantages[2:4])
    assert micro[0].old_logprobs is None
    shard = batch.shard(1, 2)
    assert torch.equal(shard.input_ids, batch.input_ids[2:])
    assert torch.equal(shard.loss_mask, batch.loss_mask[2:])


def test_counts_sum_the_mask() -> None:
    tokens, sequences = local_token_counts(_batch())
    assert tokens == 2 + 3 * 4
    assert sequences == 4


def test_positions_are_0_to_t_minus_1() -> None:
    assert _batch(2, 5).positions().tolist() == [[0, 1, 2, 3, 4]] * 2


def test_bool_mask_becomes_float() -> None:
    batch = TokenBatch(input_ids=torch.zeros(1, 3, dtype=torch.long), loss_mask=torch.tensor([[False, True, True]]))
    assert batch.loss_mask.dtype == torch.float32


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"input_ids": torch.zeros(2, 4)}, "long"),
        ({"input_ids": torch.zeros(2, 1, dtype=torch.long), "loss_mask": torch.zeros(2, 1)}, "at least 2 tokens"),
        ({"loss_mask": torch.zeros(2, 5)}, "loss_mask has shape"),
        ({"advantages": torch.zeros(2, 4, dtype=torch.long)}, "advantages must be a float"),
        ({"loss_mask": torch.tensor([[1.0, 1, 1, 1], [0, 1, 1, 1]])}, r"loss_mask\[:, 0\] must be 0"),
    ],
)
def test_bad_batches_are_rejected(kwargs: dict, message: str) -> None:
    fields = {"input_ids": torch.zeros(2, 4, dtype=torch.long), "loss_mask": torch.zeros(2, 4), **kwargs}
    with pytest.raises(ValueError, match=message):
        TokenBatch(**fields)


def test_uneven_splits_are_rejected() -> None:
    with pytest.raises(ValueError, match="micro-batches of 3"):
        _batch().split(3)
    with pytest.raises(ValueError, match="3 equal parts"):
        _batch().shard(0, 3)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"lr": 0.0}, "optimizer.lr"),
        ({"adam_beta2": 1.0}, "optimizer.adam_beta2"),
        ({"clip_grad": -1.0}, "optimizer.clip_grad"),
        ({"weight_decay": -0.1}, "optimizer.weight_decay"),
    ],
)
def test_bad_optimizer_settings_name_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigError) as err:
        OptimizerSettings(**kwargs)
    assert err.value.field == field


def test_optimizer_settings_accept_a_schedule_mapping() -> None:
    settings = OptimizerSettings(lr_schedule={"style": "exponential", "gamma": 0.95})
    assert settings.lr_schedule.gamma == 0.95

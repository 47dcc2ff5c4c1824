"""Every shipped recipe loads into a valid TrainConfig, and its model layout fits the preset."""

from pathlib import Path

import pytest

from megatron_toolrl.config import load_config
from megatron_toolrl.errors import ConfigError
from megatron_toolrl.models import arch_from_hf, get_preset, validate_layout
from megatron_toolrl.train.config import TrainConfig

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))
PRESET_OF = {"toolexpander_qwen2.5_1.5b": "qwen2.5-1.5b", "tool_zero_qwen2.5_7b": "qwen2.5-7b",
             "tool_zero_qwen2.5_32b": "qwen2.5-32b", "quickstart_cpu": "smollm2-135m"}


def test_the_expected_recipes_ship():
    assert {p.stem for p in EXAMPLES} >= set(PRESET_OF)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_recipe_loads_and_layout_fits(path):
    cfg = load_config(TrainConfig, path)
    arch = arch_from_hf(get_preset(PRESET_OF[path.stem]).hf_config)
    validate_layout(arch, cfg.model)
    if cfg.mode == "toolexpander":
        assert cfg.hard_sampling.enabled and cfg.grpo.loss.kl_coef == 0.0
        assert cfg.optimizer.lr_schedule.style == "exponential"
    if cfg.mode == "tool_zero":
        assert cfg.reward.ast.enabled and cfg.reward.schedule is not None


def test_mode_requirements_are_enforced(tmp_path):
    with pytest.raises(ConfigError, match="hard_sampling.enabled"):
        load_config(TrainConfig, None, ["mode=toolexpander"])
    with pytest.raises(ConfigError, match="reward.schedule"):
        load_config(TrainConfig, None, ["mode=tool_zero"])
    with pytest.raises(ConfigError, match="prompt.self_exemplar"):
        load_config(TrainConfig, None, ["prompt.self_exemplar=true"])

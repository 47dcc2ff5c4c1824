"""The YAML/override config loader: strict types, unknown keys, errors that name file, line, field."""

from dataclasses import dataclass, field
from typing import Literal

import pytest

from megatron_toolrl.config import from_dict, load_config, to_dict
from megatron_toolrl.errors import ConfigError
from megatron_toolrl.grpo.loss import PolicyLossConfig
from megatron_toolrl.models.config import ModelConfig


@dataclass
class Inner:
    rate: float = 0.5
    mode: Literal["a", "b"] = "a"


@dataclass
class Outer:
    steps: int = 3
    name: str = "x"
    inner: Inner = field(default_factory=Inner)
    tags: list[str] = field(default_factory=list)
    limit: int | None = None
    loss: PolicyLossConfig = field(default_factory=PolicyLossConfig)
    model: ModelConfig = field(default_factory=ModelConfig)


def write(tmp_path, text):
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    return path


def test_loads_nested_and_overrides(tmp_path):
    path = write(tmp_path, "steps: 5\ninner:\n  rate: 1\n  mode: b\ntags: [p, q]\nmodel:\n  parallel:\n    tensor_parallel: 2\n")
    cfg = load_config(Outer, path, ["inner.rate=2.5e-1", "limit=7", "loss.eps_high=0.3"])
    assert cfg.steps == 5 and cfg.inner.rate == 0.25 and cfg.inner.mode == "b" and cfg.tags == ["p", "q"]
    assert cfg.limit == 7 and cfg.loss.eps_high == 0.3 and cfg.model.parallel.tensor_parallel == 2
    assert isinstance(cfg.inner.rate, float)
    assert to_dict(cfg)["model"]["parallel"]["tensor_parallel"] == 2


def test_unknown_key_names_file_line_and_field(tmp_path):
    path = write(tmp_path, "steps: 5\ninner:\n  rate: 1\n  colour: red\n")
    with pytest.raises(ConfigError) as err:
        load_config(Outer, path)
    assert str(err.value).startswith(f"{path}:4: field 'inner.colour': unknown key")


def test_wrong_type_and_choice(tmp_path):
    with pytest.raises(ConfigError, match=r"cfg.yaml:1: field 'steps': expected an integer"):
        load_config(Outer, write(tmp_path, "steps: five\n"))
    with pytest.raises(ConfigError, match=r"cfg.yaml:2: field 'inner.mode': 'c' is not one of"):
        load_config(Outer, write(tmp_path, "inner:\n  mode: c\n"))
    with pytest.raises(ConfigError, match="expected true/false"):
        from_dict(ModelConfig, {"recompute_activations": "yes"})


def test_dataclass_validation_is_located(tmp_path):
    path = write(tmp_path, "steps: 1\nloss:\n  eps_low: 1.5\n")
    with pytest.raises(ConfigError, match=r"cfg.yaml:3: field 'loss.eps_low': must be in \[0, 1\)"):
        load_config(Outer, path)
    with pytest.raises(ConfigError, match="fp8 needs transformer_impl"):
        load_config(Outer, write(tmp_path, "model:\n  precision:\n    params_dtype: bf16\n    fp8: e4m3\n"))


def test_override_errors_point_at_the_command_line(tmp_path):
    with pytest.raises(ConfigError, match=r"<command line>: field 'inner.nope': unknown key"):
        load_config(Outer, None, ["inner.nope=1"])
    with pytest.raises(ConfigError, match="not key=value"):
        load_config(Outer, None, ["steps"])


def test_bad_yaml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(Outer, tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match=r"cfg.yaml:2: not valid YAML"):
        load_config(Outer, write(tmp_path, "steps: 1\n  bad: [\n"))
    with pytest.raises(ConfigError, match="duplicate key"):
        load_config(Outer, write(tmp_path, "steps: 1\nsteps: 2\n"))

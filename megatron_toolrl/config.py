"""Typed config from YAML + `key=value` overrides, validated against dataclasses.

Every config in the package is a (possibly nested) dataclass with typed, documented fields. This
module turns a YAML file into one, rejecting unknown keys and wrong types with an error that
names the file, the line and the dotted field (`quickstart.yaml:12: field 'loss.eps_high': ...`).
Overrides from the command line (`train.steps=6 loss.kl_coef=0.001`) are applied first and are
reported as coming from the command line.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import yaml

from megatron_toolrl.errors import ConfigError, ToolRLError

T = TypeVar("T")
COMMAND_LINE = "<command line>"


# ----------------------------------------------------------------------------- YAML with lines


def _node_to_python(node: yaml.Node, path: str, lines: dict[str, int]) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(yaml.safe_load(yaml.serialize(key_node)))
            child = f"{path}.{key}" if path else key
            if key in out:
                raise ConfigError("duplicate key", line=key_node.start_mark.line + 1, field=child)
            out[key] = _node_to_python(value_node, child, lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_node_to_python(item, f"{path}[{i}]", lines) for i, item in enumerate(node.value)]
    return yaml.safe_load(yaml.serialize(node))


def read_yaml(path: str | Path) -> tuple[dict[str, Any], dict[str, int]]:
    """The mapping in a YAML file and the line of every dotted key in it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError("no such config file", path=path)
    try:
        node = yaml.compose(path.read_text(), Loader=yaml.SafeLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        raise ConfigError(f"not valid YAML: {getattr(err, 'problem', err)}", path=path,
                          line=mark.line + 1 if mark else None) from err
    lines: dict[str, int] = {}
    if node is None:
        return {}, lines
    data = _node_to_python(node, "", lines)
    if not isinstance(data, dict):
        raise ConfigError(f"the top level must be a mapping, got {type(data).__name__}", path=path, line=1)
    return data, lines


# ----------------------------------------------------------------------------- overrides


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """`a.b=1` sets data["a"]["b"] = 1; values are YAML scalars/lists (`x=[1,2]`, `y=null`)."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not key=value", path=COMMAND_LINE)
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key or any(not part for part in key.split(".")):
            raise ConfigError(f"override {item!r} has an empty key", path=COMMAND_LINE)
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as err:
            raise ConfigError(f"value {raw!r} is not valid YAML", path=COMMAND_LINE, field=key) from err
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"cannot set {key!r}: {part!r} is not a mapping", path=COMMAND_LINE, field=key)
            node = child
        node[parts[-1]] = value
    return data


# ----------------------------------------------------------------------------- dict -> dataclass


class _Where:
    """Where a value came from, for error messages."""

    def __init__(self, source: str | None, lines: dict[str, int], overridden: set[str]):
        self.source, self.lines, self.overridden = source, lines, overridden

    def error(self, message: str, field: str) -> ConfigError:
        if field in self.overridden:
            return ConfigError(message, path=COMMAND_LINE, field=field)
        line = self.lines.get(field)
        prefix = field
        while line is None and "." in prefix:
            prefix = prefix.rsplit(".", 1)[0]
            line = self.lines.get(prefix)
        return ConfigError(message, path=self.source, line=line, field=field)


def _convert(value: Any, tp: Any, field: str, where: _Where) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            raise where.error(f"{value!r} is not one of {list(choices)}", field)
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise where.error("may not be null", field)
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, field, where)
            except ConfigError as err:
                errors.append(err.reason)
        raise where.error("; ".join(errors), field)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise where.error(f"expected a mapping, got {type(value).__name__}", field)
        return _build(tp, value, field, where)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            raise where.error(f"{value!r} is not one of {[m.value for m in tp]}", field) from None
    if origin in (list, tuple) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise where.error(f"expected a list, got {type(value).__name__}", field)
        args = get_args(tp)
        item_tp = args[0] if args else Any
        items = [_convert(v, item_tp, f"{field}[{i}]", where) for i, v in enumerate(value)]
        return tuple(items) if (origin is tuple or tp is tuple) else items
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise where.error(f"expected a mapping, got {type(value).__name__}", field)
        args = get_args(tp)
        value_tp = args[1] if len(args) == 2 else Any
        return {k: _convert(v, value_tp, f"{field}.{k}", where) for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise where.error(f"expected true/false, got {value!r}", field)
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise where.error(f"expected an integer, got {value!r}", field)
        return value
    if tp is float:
        if isinstance(value, str):
            # PyYAML reads exponents without a dot ("1e-4") as strings (YAML 1.1): accept them.
            try:
                value = float(value)
            except ValueError:
                raise where.error(f"expected a number, got {value!r}", field) from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise where.error(f"expected a number, got {value!r}", field)
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise where.error(f"expected a string, got {value!r}", field)
        return value
    if tp is Path:
        if not isinstance(value, str):
            raise where.error(f"expected a path string, got {value!r}", field)
        return Path(value)
    raise where.error(f"unsupported config type {tp!r}", field)


def _build(cls: type[T], data: dict[str, Any], prefix: str, where: _Where) -> T:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            field = f"{prefix}.{key}" if prefix else key
            raise where.error(f"unknown key (known: {', '.join(sorted(fields))})", field)
    kwargs = {}
    for name, value in data.items():
        field = f"{prefix}.{name}" if prefix else name
        kwargs[name] = _convert(value, hints[name], field, where)
    try:
        return cls(**kwargs)
    except ConfigError as err:
        # A dataclass's own validation names a field relative to itself (or a full dotted path).
        inner = err.field or ""
        field = inner if (not prefix or inner.startswith(prefix)) else f"{prefix}.{inner}" if inner else prefix
        raise where.error(err.reason, field) from err
    except (ToolRLError, TypeError, ValueError) as err:
        raise where.error(str(err), prefix or cls.__name__) from err


def from_dict(cls: type[T], data: dict[str, Any], *, source: str | None = None, lines: dict[str, int] | None = None,
              overridden: set[str] | None = None) -> T:
    """Build dataclass `cls` from a plain mapping, strictly (unknown keys and wrong types are errors)."""
    return _build(cls, data, "", _Where(source, lines or {}, overridden or set()))


def load_config(cls: type[T], path: str | Path | None, overrides: list[str] | None = None) -> T:
    """Read YAML `path` (or nothing), apply `key=value` overrides, and build `cls`."""
    data, lines = read_yaml(path) if path is not None else ({}, {})
    overrides = list(overrides or [])
    apply_overrides(data, overrides)
    overridden = {item.split("=", 1)[0].strip() for item in overrides}
    return from_dict(cls, data, source=str(path) if path is not None else None, lines=lines, overridden=overridden)


def to_dict(obj: Any) -> Any:
    """A dataclass config as plain YAML/JSON-able data (enums by value, paths as strings)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj

"""JSON call objects (`{"name": ..., "arguments": {...}}`) decoded from untrusted text, with bounds.

The text is measured first (`prescan.scan_json`) so `json.loads` never meets deep nesting or a
flood of tokens; the decoder refuses NaN/Infinity and duplicate keys; the decoded values are then
walked once to count them and check their nesting against `ParseLimits`.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from megatron_toolrl.data.task import ToolCall
from megatron_toolrl.toolcall.budget import Budget
from megatron_toolrl.toolcall.errors import ParseFailure
from megatron_toolrl.toolcall.prescan import scan_json

_JSON_SPACE = re.compile(r"[ \t\n\r]*")


def _reject_constant(name: str) -> Any:
    raise ParseFailure(f"{name} is not a finite number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 overflows to inf
        raise ParseFailure(f"number {text[:40]!r} is not finite")
    return value


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ParseFailure(f"duplicate key {key[:60]!r}")
            seen.add(key)
    return out


# NaN and Infinity are not JSON and never an accepted value; a repeated key would silently keep the
# last value, hiding a malformed answer. Module-level: the decoder keeps no state between calls.
_DECODER = json.JSONDecoder(
    object_pairs_hook=_object_without_duplicates,
    parse_constant=_reject_constant,
    parse_float=_finite_float,
)


def decode_json(text: str, budget: Budget, outer_levels: int) -> Any:
    """Decode one JSON value filling all of `text` (surrounding whitespace allowed).

    `outer_levels` is how many brackets wrap the arguments object (call object, list): the
    pre-scan allows them on top of `max_depth`.
    """
    values = decode_json_values(text, budget, outer_levels)
    if len(values) != 1:
        raise ParseFailure(f"expected one JSON value, found {len(values)}")
    return values[0]


def decode_json_values(text: str, budget: Budget, outer_levels: int) -> list[Any]:
    """Decode consecutive JSON values separated by whitespace (ToolRL's one object per line)."""
    limits = budget.limits
    budget.tokens += scan_json(text, limits.max_tokens - budget.tokens, limits.max_depth, outer_levels)
    budget.check_time("scan")
    values: list[Any] = []
    pos = _JSON_SPACE.match(text, 0).end()
    while pos < len(text):
        if len(values) >= limits.max_calls:
            raise ParseFailure(f"more than max_calls={limits.max_calls} JSON values")
        try:
            value, pos = _DECODER.raw_decode(text, pos)
        except ValueError as exc:  # JSONDecodeError, or an int over Python's 4,300-digit limit
            raise ParseFailure(f"invalid JSON: {str(exc)[:200]}") from None
        values.append(value)
        pos = _JSON_SPACE.match(text, pos).end()
    budget.check_time("decode")
    return values


def call_from_object(obj: Any, arguments_keys: tuple[str, ...], budget: Budget) -> ToolCall:
    """A ToolCall from `{"name": str, <one of arguments_keys>: {...}}`; any other key is an error."""
    if not isinstance(obj, dict):
        raise ParseFailure(f"a call must be a JSON object, got {_json_type(obj)}")
    if "name" not in obj:
        raise ParseFailure(f"call object has no 'name' key (keys: {_keys(obj)})")
    present = [k for k in arguments_keys if k in obj]
    if not present:
        raise ParseFailure(f"call object has no {' or '.join(map(repr, arguments_keys))} key (keys: {_keys(obj)})")
    if len(present) > 1:
        raise ParseFailure(f"call object has both {present[0]!r} and {present[1]!r}")
    if len(obj) != 2:
        extra = [k for k in obj if k != "name" and k != present[0]]
        raise ParseFailure(f"call object has unexpected keys {_keys(extra)}")
    name = obj["name"]
    if not isinstance(name, str) or not name:
        raise ParseFailure(f"call 'name' must be a non-empty string, got {_json_type(name)}")
    arguments = obj[present[0]]
    if not isinstance(arguments, dict):
        raise ParseFailure(f"call {present[0]!r} must be a JSON object, got {_json_type(arguments)}")
    budget.node()
    _walk(arguments, 0, budget)
    return ToolCall(name=name, arguments=arguments)


def _walk(value: Any, depth: int, budget: Budget) -> None:
    """Count the values under an arguments object and check their nesting (the object is level 0)."""
    budget.node()
    if isinstance(value, dict):
        children: Any = value.values()
    elif isinstance(value, list):
        children = value
    else:
        return
    if depth > budget.limits.max_depth:
        raise ParseFailure(f"arguments nested deeper than max_depth={budget.limits.max_depth}")
    for child in children:
        _walk(child, depth + 1, budget)


def _json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    return type(value).__name__


def _keys(keys: Any) -> str:
    return ", ".join(repr(k[:40]) for k in list(keys)[:8])

"""`render_calls`: tool calls -> the text a model would write in each `OutputFormat`.

Used for SFT targets, few-shot demonstrations and the parser/checker agreement tests, so the
output of `render_calls(calls, fmt)` parses back (`parse_calls`) to the same calls, except that
JSON has no tuples (a tuple comes back as a list). No calls render as the empty string.
Calls are trusted data: a value a format cannot hold raises ValueError (TypeError for a type it
cannot hold) naming call and argument.
"""

from __future__ import annotations

import json
import keyword
import math
from typing import Any

from megatron_toolrl.data.task import ToolCall
from megatron_toolrl.toolcall.parse import CALL_CLOSE, CALL_OPEN
from megatron_toolrl.toolcall.types import OutputFormat


def render_calls(calls: list[ToolCall], fmt: OutputFormat) -> str:
    """The answer text for `calls` in `fmt` (layouts in `parse.py`); "" when `calls` is empty."""
    fmt = OutputFormat(fmt)
    if not calls:
        return ""
    if fmt is OutputFormat.PYTHON:
        return "[" + ", ".join(_python_call(c) for c in calls) + "]"
    if fmt is OutputFormat.HERMES:
        return "\n".join(f"{CALL_OPEN}\n{_json_call(c, 'arguments')}\n{CALL_CLOSE}" for c in calls)
    if fmt is OutputFormat.JSON_LINES:
        lines = "\n".join(_json_call(c, "parameters") for c in calls)
        return f"{CALL_OPEN}\n{lines}\n{CALL_CLOSE}"
    if fmt is OutputFormat.JSON_LIST:
        items = ", ".join(_json_call(c, "arguments") for c in calls)
        return f"{CALL_OPEN}\n[{items}]\n{CALL_CLOSE}"
    raise AssertionError(f"unhandled output format {fmt}")


def _json_call(call: ToolCall, arguments_key: str) -> str:
    where = f"call {call.name!r}"
    for name, value in call.arguments.items():
        _check_json_value(value, f"{where}, argument {name!r}")
    text = json.dumps({"name": call.name, arguments_key: call.arguments}, ensure_ascii=False, allow_nan=False)
    # A tag inside a string would end the block early (the parser, like vLLM's hermes parser, finds
    # blocks by their tags). "<" only occurs inside JSON strings, where \u003c reads back as "<".
    return text.replace(CALL_OPEN, "\\u003c" + CALL_OPEN[1:]).replace(CALL_CLOSE, "\\u003c" + CALL_CLOSE[1:])


def _check_json_value(value: Any, where: str) -> None:
    """Refuse what json.dumps would silently change (non-str keys) or cannot write (NaN, objects)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where}: JSON object keys must be strings, got {key!r}")
            _check_json_value(item, where)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _check_json_value(item, where)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where}: {value!r} cannot be written as JSON")
    elif not isinstance(value, (str, int, bool, type(None))):
        raise TypeError(f"{where}: a {type(value).__name__} cannot be written as JSON")


def _python_call(call: ToolCall) -> str:
    parts = call.name.split(".")
    if not all(_is_identifier(p) for p in parts):
        raise ValueError(f"call {call.name!r}: the python format needs a dotted identifier as function name")
    args = []
    for name, value in call.arguments.items():
        if not isinstance(name, str) or not _is_identifier(name):
            raise ValueError(f"call {call.name!r}: argument name {name!r} is not a python identifier")
        args.append(f"{name}={_python_literal(value, f'call {call.name!r}, argument {name!r}')}")
    return f"{call.name}({', '.join(args)})"


def _is_identifier(name: str) -> bool:
    return name.isidentifier() and not keyword.iskeyword(name)


def _python_literal(value: Any, where: str) -> str:
    # repr of these types is a python literal that ast.parse reads back to an equal value.
    if value is None or isinstance(value, (bool, int, str)):
        return repr(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where}: {value!r} has no python literal")
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_python_literal(v, where) for v in value) + "]"
    if isinstance(value, tuple):
        inner = ", ".join(_python_literal(v, where) for v in value)
        return "(" + inner + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, dict):
        items = []
        for key, item in value.items():
            if not (key is None or isinstance(key, (str, int, float, bool))):
                raise TypeError(f"{where}: dict key {key!r} is not a scalar")
            items.append(f"{_python_literal(key, where)}: {_python_literal(item, where)}")
        return "{" + ", ".join(items) + "}"
    raise TypeError(f"{where}: a {type(value).__name__} has no python literal")

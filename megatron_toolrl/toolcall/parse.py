"""`parse_calls`: model text -> tool calls, for each `OutputFormat`, bounded and never evaluated.

Common to all formats: an optional leading `<think>...</think>` block (recorded in the result),
then the answer. Layout of the answer per format:

- hermes: any number of `<tool_call>{"name": .., "arguments": {..}}</tool_call>` blocks, one call
  each; free text around them is allowed (and ignored).
- json_lines (ToolRL): at most one `<tool_call>` block holding one `{"name", "parameters"}` object
  per line ("arguments" is accepted in place of "parameters"); an empty block is an error.
- json_list (Tool-N1): at most one `<tool_call>` block holding a JSON list of
  `{"name", "arguments"}` objects; `[]` means no call.
- python (BFCL): the whole answer is `[f(a=1), mod.g(b='x')]` (see `python_calls`).

In the tag formats, text without any `<tool_call>` block is a well-formed answer with no call;
an unterminated block (truncated output), a stray `</tool_call>` or a nested `<tool_call>` is an
error. Only the `text` argument is untrusted: whatever it holds, `parse_calls` returns a
ParseResult and never raises.
"""

from __future__ import annotations

import time

from megatron_toolrl.data.task import ToolCall
from megatron_toolrl.toolcall.budget import Budget
from megatron_toolrl.toolcall.errors import ParseFailure
from megatron_toolrl.toolcall.json_calls import call_from_object, decode_json, decode_json_values
from megatron_toolrl.toolcall.python_calls import parse_python_calls
from megatron_toolrl.toolcall.types import OutputFormat, ParseLimits, ParseResult

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
CALL_OPEN, CALL_CLOSE = "<tool_call>", "</tool_call>"

# Brackets wrapping the arguments object in each JSON layout: the call object, plus the list in json_list.
_CALL_OBJECT_LEVELS = 2
_CALL_LIST_LEVELS = 3

_DEFAULT_LIMITS = ParseLimits()


def parse_calls(text: str, fmt: OutputFormat, limits: ParseLimits = _DEFAULT_LIMITS) -> ParseResult:
    """Decode the calls in `text` written in `fmt`. Malformed or over-limit text gives `error`.

    `fmt` and `limits` are trusted arguments: a `fmt` that is not an OutputFormat raises ValueError.
    """
    start = time.thread_time()
    fmt = OutputFormat(fmt)
    if not isinstance(text, str):
        return ParseResult(error=f"model output must be a str, got {type(text).__name__}")
    if len(text) > limits.max_chars:
        return ParseResult(error=f"output of {len(text)} chars is longer than max_chars={limits.max_chars}")
    has_think, think = False, ""
    try:
        has_think, think, answer = _split_think(text)
        budget = Budget(limits, start)
        calls = _parse_answer(answer, fmt, budget)
        if len(calls) > limits.max_calls:
            raise ParseFailure(f"more than max_calls={limits.max_calls} calls")
        budget.check_time("end")
        return ParseResult(calls=calls, has_think=has_think, think=think)
    except ParseFailure as exc:
        return ParseResult(error=str(exc), has_think=has_think, think=think)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: untrusted text never raises
        return ParseResult(error=f"unparseable output ({type(exc).__name__})", has_think=has_think, think=think)


def _split_think(text: str) -> tuple[bool, str, str]:
    """(has_think, think text, rest) for a text that may open with `<think>...</think>`."""
    stripped = text.lstrip()
    if not stripped.startswith(THINK_OPEN):
        return False, "", text
    end = stripped.find(THINK_CLOSE, len(THINK_OPEN))
    if end < 0:
        raise ParseFailure("unterminated <think> block")
    return True, stripped[len(THINK_OPEN):end], stripped[end + len(THINK_CLOSE):]


def _parse_answer(answer: str, fmt: OutputFormat, budget: Budget) -> list[ToolCall]:
    if fmt is OutputFormat.PYTHON:
        return parse_python_calls(answer, budget)
    blocks = _tool_call_blocks(answer, budget.limits.max_calls)
    if fmt is OutputFormat.HERMES:
        return [call_from_object(decode_json(b, budget, _CALL_OBJECT_LEVELS), ("arguments",), budget) for b in blocks]
    if not blocks:
        return []
    if len(blocks) > 1:
        raise ParseFailure(f"{fmt.value}: expected one <tool_call> block, found {len(blocks)}")
    if fmt is OutputFormat.JSON_LINES:
        objects = decode_json_values(blocks[0], budget, _CALL_OBJECT_LEVELS)
        if not objects:
            raise ParseFailure("empty <tool_call> block")
        return [call_from_object(o, ("parameters", "arguments"), budget) for o in objects]
    if fmt is OutputFormat.JSON_LIST:
        items = decode_json(blocks[0], budget, _CALL_LIST_LEVELS)
        if not isinstance(items, list):
            raise ParseFailure("json_list: the <tool_call> block must hold a JSON list of calls")
        if len(items) > budget.limits.max_calls:
            raise ParseFailure(f"more than max_calls={budget.limits.max_calls} calls")
        return [call_from_object(o, ("arguments",), budget) for o in items]
    raise AssertionError(f"unhandled output format {fmt}")


def _tool_call_blocks(answer: str, max_calls: int) -> list[str]:
    """The contents of the `<tool_call>...</tool_call>` blocks, in order."""
    blocks: list[str] = []
    pos = 0
    while True:
        open_at = answer.find(CALL_OPEN, pos)
        if answer.find(CALL_CLOSE, pos, len(answer) if open_at < 0 else open_at) >= 0:
            raise ParseFailure(f"{CALL_CLOSE} without a matching {CALL_OPEN}")
        if open_at < 0:
            return blocks
        content_at = open_at + len(CALL_OPEN)
        close_at = answer.find(CALL_CLOSE, content_at)
        if close_at < 0:
            raise ParseFailure(f"unterminated {CALL_OPEN} block (truncated output?)")
        if answer.find(CALL_OPEN, content_at, close_at) >= 0:
            raise ParseFailure(f"nested {CALL_OPEN}")
        blocks.append(answer[content_at:close_at])
        if len(blocks) > max_calls:
            raise ParseFailure(f"more than max_calls={max_calls} <tool_call> blocks")
        pos = close_at + len(CALL_CLOSE)

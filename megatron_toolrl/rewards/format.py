"""The format term: does the answer have the structure the output format asks for? (score 0 or 1)

ToolRL (`customize_format_reward_func`, rlla.py) checks the answer against a regex chosen from the
ground truth: `<think>...</think>` first, then a `<tool_call>` block when the ground truth calls a
tool, or a plain `<response>` when it does not, with each tag exactly once. We check the same
envelope for each of our output formats:

- a `<think>...</think>` block, exactly one and at the very start, is required when
  `require_think` is set (and must be well formed when present anyway);
- a task with ground-truth calls needs, after it, only call blocks whose content parses into at
  least one call: one or more `<tool_call>` blocks (hermes), exactly one (json_lines, json_list),
  or a `[...]` call list (python), and nothing after the last block;
- an irrelevance task needs a non-empty plain answer: no call, no call markup, nothing malformed
  (`declines_to_call`).

In the python format plain prose does not parse as a call list, so "no call" there means: nothing
decoded, and the answer neither opens a call list (`[`) nor starts like a call (`name(`).
"""

from __future__ import annotations

import re

from megatron_toolrl.toolcall.types import OutputFormat, ParseResult

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
CALL_OPEN, CALL_CLOSE = "<tool_call>", "</tool_call>"
_BLOCK = re.compile(r"<tool_call>.*?</tool_call>", re.DOTALL)
_CALL_START = re.compile(r"[A-Za-z_][\w.]*\(")


def answer_after_think(text: str) -> str | None:
    """The text after a leading, well-formed think block (the whole text when there is none).

    None when think tags are present but malformed: more than one pair, unclosed, or not first.
    """
    body = text.strip()
    opens, closes = body.count(THINK_OPEN), body.count(THINK_CLOSE)
    if opens == 0 and closes == 0:
        return body
    if opens != 1 or closes != 1 or not body.startswith(THINK_OPEN):
        return None
    return body[body.index(THINK_CLOSE) + len(THINK_CLOSE) :].strip()


def has_leading_think(text: str) -> bool:
    """Exactly one `<think>...</think>` block, at the start of the answer."""
    body = text.strip()
    return body.startswith(THINK_OPEN) and answer_after_think(body) is not None


def declines_to_call(text: str, parsed: ParseResult, fmt: OutputFormat) -> bool:
    """The answer makes no call and no malformed attempt at one (the right answer to an irrelevance task)."""
    if parsed.calls:
        return False
    if parsed.error is None:
        return True
    if fmt is not OutputFormat.PYTHON:
        return False  # tag formats accept prose, so an error there is a broken call block or think block
    body = answer_after_think(text)
    if body is None:
        return False
    head = body.strip("`\n ")
    return not head.startswith("[") and _CALL_START.match(head) is None


def format_score(text: str, parsed: ParseResult, expects_calls: bool, fmt: OutputFormat, require_think: bool) -> float:
    """1.0 when `text` has the required structure, else 0.0 (see the module docstring)."""
    body = answer_after_think(text)
    if body is None or (require_think and not has_leading_think(text)):
        return 0.0
    if not expects_calls:
        plain = bool(body) and declines_to_call(text, parsed, fmt) and CALL_OPEN not in body and CALL_CLOSE not in body
        return 1.0 if plain else 0.0
    if parsed.error is not None:
        return 0.0
    if not parsed.calls:
        return 0.0
    if fmt is OutputFormat.PYTHON:
        return 1.0 if body.startswith("[") and body.endswith("]") else 0.0
    # the parser has already rejected unterminated, nested and stray tags, so removing the blocks
    # (one linear scan) leaves exactly the text around them, which must be blank
    if _BLOCK.sub("", body).strip():
        return 0.0
    blocks = body.count(CALL_OPEN)
    if fmt in (OutputFormat.JSON_LINES, OutputFormat.JSON_LIST) and blocks != 1:
        return 0.0
    return 1.0

"""Detecting Self-Exemplifying Thinking (ToolExpander, arXiv 2510.07737): a bonus of +0.01.

The abstract rewards the model "when it autonomously generates and analyses few-shot examples"
inside its reasoning; the paper's detector is not public. Ours (our choice, docs/rewards.md):
the `<think>` block holds an `<example>...</example>` whose content parses, in the task's output
format or any other, into at least one call that is a valid call of one of the task's tools (name
exists, required arguments present, no unknown argument, types match the schema), and the
reasoning outside the example blocks still has at least `min_analysis_words` words (the analysis).
"""

from __future__ import annotations

import re
from itertools import islice
from typing import Any, Sequence

from megatron_toolrl.rewards.config import ExemplarConfig
from megatron_toolrl.rewards.schema import call_schema_error
from megatron_toolrl.toolcall import parse_calls
from megatron_toolrl.toolcall.types import OutputFormat, ParseLimits, ParseResult

_EXAMPLE = re.compile(r"<example>(.*?)</example>", re.DOTALL)
_WORD = re.compile(r"\w+")


def _candidate_parses(content: str, fmt: OutputFormat) -> list[tuple[str, OutputFormat]]:
    """(text, format) pairs to try: the task's format first, then the others; bare JSON also
    wrapped in a `<tool_call>` block, since an example is often written without the tags."""
    order = [fmt] + [f for f in OutputFormat if f is not fmt]
    tries = [(content, f) for f in order]
    stripped = content.strip()
    if stripped.startswith(("{", "[")) and "<tool_call>" not in stripped:
        wrapped = f"<tool_call>\n{stripped}\n</tool_call>"
        tries += [(wrapped, f) for f in order if f is not OutputFormat.PYTHON]
    return tries


def example_has_valid_call(
    content: str, tools: Sequence[dict[str, Any]], fmt: OutputFormat, limits: ParseLimits
) -> bool:
    """Whether the example text holds a call that is valid for one of `tools`."""
    for text, f in _candidate_parses(content, fmt):
        parsed = parse_calls(text, f, limits)
        if parsed.error is None and any(call_schema_error(tools, c) is None for c in parsed.calls):
            return True
    return False


def has_self_exemplar(
    parsed: ParseResult, tools: Sequence[dict[str, Any]], fmt: OutputFormat, config: ExemplarConfig, limits: ParseLimits
) -> bool:
    """Whether the answer's reasoning writes and analyses its own valid example call."""
    if not parsed.has_think:
        return False
    examples = [m.group(1) for m in islice(_EXAMPLE.finditer(parsed.think), config.max_examples)]
    if not examples:
        return False
    analysis = _EXAMPLE.sub(" ", parsed.think)
    if len(_WORD.findall(analysis)) < config.min_analysis_words:
        return False
    return any(example_has_valid_call(e, tools, fmt, limits) for e in examples)

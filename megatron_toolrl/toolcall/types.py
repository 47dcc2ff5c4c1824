"""Types shared by the parsers, the checker and the rewards."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from megatron_toolrl.data.task import ToolCall


class OutputFormat(str, enum.Enum):
    """How the model writes its calls.

    hermes:     one `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` block per call
                (Qwen2.5 / Hermes chat templates).
    json_lines: ToolRL: one `<tool_call>` block holding one `{"name", "parameters"}` JSON object
                per line.
    json_list:  Tool-N1: one `<tool_call>` block holding a JSON list of `{"name", "arguments"}`.
    python:     BFCL's prompting format: `[f(a=1), g(b="x")]`.
    """

    HERMES = "hermes"
    JSON_LINES = "json_lines"
    JSON_LIST = "json_list"
    PYTHON = "python"


@dataclass(frozen=True)
class ParseLimits:
    """Bounds on untrusted model text. Anything beyond them is a parse error, never an exception."""

    max_chars: int = 65_536
    """Longest text parsed; longer text is rejected before any work (model outputs are short)."""
    max_calls: int = 64
    """Most calls in one answer (BFCL's largest parallel cases have < 10)."""
    max_depth: int = 32
    """Deepest nesting of lists/dicts inside arguments."""
    max_nodes: int = 20_000
    """Most JSON values / AST nodes in one answer."""
    max_seconds: float = 0.010
    """Time budget per parse-and-score; exceeding it is reported as an error."""


@dataclass
class ParseResult:
    """Calls decoded from model text. `error` is None when the text is well formed.

    `calls` is empty both for "no call" (a valid answer to an irrelevance task) and for a
    malformed answer; `error` tells which.
    """

    calls: list[ToolCall] = field(default_factory=list)
    error: str | None = None
    has_think: bool = False
    """The text holds a `<think>...</think>` block (before the calls)."""
    think: str = ""
    """The text of the first `<think>` block, for the self-exemplar detector."""

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class CheckResult:
    """Outcome of the AST check of one answer against one ground truth."""

    valid: bool
    error: str = ""
    error_type: str = ""
    """Short machine-readable reason in BFCL's vocabulary (e.g. `value_error:others`)."""
    calls: list[ToolCall] = field(default_factory=list)

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
    """Deepest nesting of lists/dicts inside arguments (a list argument is level 1; the call's own
    brackets and the arguments object do not count)."""
    max_nodes: int = 20_000
    """Most decoded values (calls, containers, scalars) in one answer."""
    max_seconds: float = 0.010
    """Time budget per parse-and-score; exceeding it is reported as an error. Measured as CPU time
    of the calling thread (so a busy machine does not change verdicts), checked between the stages
    of a parse (pre-scan, decode, walk); a stage itself is kept short by the bounds above."""
    max_tokens: int = 2_048
    """Most lexical tokens (names, numbers, punctuation; a string literal counts as one) in the call
    text, estimated by a cheap scan before `json.loads`/`ast.parse` run. It is the bound that keeps
    `ast.parse` well inside `max_seconds` (~1 us per token on a 2-core Sapphire Rapids). The longest
    canonical answer of BFCL v4 (parallel, live included) has 272; 2,048 leaves ~8x room."""

    def __post_init__(self) -> None:
        counts = {"max_chars": self.max_chars, "max_calls": self.max_calls, "max_depth": self.max_depth,
                  "max_nodes": self.max_nodes, "max_tokens": self.max_tokens}
        for name, value in counts.items():
            if type(value) is not int or value < 1:
                raise ValueError(f"ParseLimits.{name} must be a positive int, got {value!r}")
        if not self.max_seconds > 0:
            raise ValueError(f"ParseLimits.max_seconds must be > 0, got {self.max_seconds!r}")


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
    parse: ParseResult | None = None
    """The parse of the model text when the check started from text (`check`); None from `check_calls`.
    Rewards read format facts (`ok`, `has_think`, `think`) from it instead of parsing twice."""

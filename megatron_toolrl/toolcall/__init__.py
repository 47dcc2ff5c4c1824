"""Model text -> tool calls (bounded, never evaluated), calls -> text, and the AST checker.

    parse_calls(text, fmt, limits) -> ParseResult     # untrusted text; never raises
    render_calls(calls, fmt) -> str                   # SFT targets, few-shot demos
    check(tools, text, ground_truth, category, fmt, limits) -> CheckResult
    check_calls(tools, calls, ground_truth, category) -> CheckResult

The checker has BFCL's semantics (see `checker` and `values`) and is compared against bfcl-eval's
own checker in tests/integration/test_checker_vs_bfcl.py.
"""

from megatron_toolrl.toolcall.checker import BFCL_CATEGORY, check, check_calls
from megatron_toolrl.toolcall.parse import parse_calls
from megatron_toolrl.toolcall.render import render_calls
from megatron_toolrl.toolcall.types import CheckResult, OutputFormat, ParseLimits, ParseResult
from megatron_toolrl.toolcall.values import standardize_string

__all__ = [
    "BFCL_CATEGORY",
    "CheckResult",
    "OutputFormat",
    "ParseLimits",
    "ParseResult",
    "check",
    "check_calls",
    "parse_calls",
    "render_calls",
    "standardize_string",
]

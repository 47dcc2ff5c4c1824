"""A guard in front of BFCL's Python-call decoder, which evaluates parts of model text.

`bfcl_eval.model_handler.utils.resolve_ast_by_type` runs `eval(ast.unparse(node))` on every
`BinOp` and `Lambda` it meets in an argument value. Model text is untrusted: `f(x=__import__("os")
.getcwd() + "")` would execute, and `f(x=9**9**9)` or `f(x="a" * 10**12)` would hang or exhaust
memory. We keep BFCL's decoder (the evaluation must match the official one) but first parse the
same string it will parse, with the same preprocessing, and refuse texts whose arithmetic is not
plain, small and side-effect free. The refusal is reported as a decode failure with the error type
`ast_decoder:unsafe_expression` (ours, not BFCL's).

Plain arithmetic means: a tree of at most `MAX_ARITH_NODES` nodes made of numeric or string
constants, unary +/- and the operators + - * / // % **, whose value we can compute within size
bounds (ints up to `MAX_INT_BITS` bits, strings up to the text length limit). Anything else under
a `BinOp` (a call, a name, an attribute, a subscript...) and any `Lambda` is refused. Arithmetic
that raises (1/0, "a" - 1) is let through: BFCL's eval then raises the same error, harmlessly.
"""

from __future__ import annotations

import ast
from typing import Any

from megatron_toolrl.toolcall.types import ParseLimits

MAX_ARITH_NODES = 256
"""Largest arithmetic sub-tree allowed (a longer `1+1+...+1` chain would exhaust the recursion
limit of `ast.unparse`/`eval`). Our choice; real tool arguments hold a handful of nodes."""
MAX_INT_BITS = 4096
"""Largest integer an arithmetic sub-tree may produce. Our choice."""


class _Refused(Exception):
    pass


class _Harmless(Exception):
    """The arithmetic raises in Python too; BFCL's eval will raise the same way, without effects."""


def bfcl_python_input(text: str) -> str:
    """The exact string BFCL's `default_decode_ast_prompting` + `ast_parse` hand to `ast.parse`."""
    result = text.strip("`\n ")
    if not result.startswith("["):
        result = "[" + result
    if not result.endswith("]"):
        result = result + "]"
    return result.strip().strip("'")


def unsafe_reason(text: str, limits: ParseLimits) -> str | None:
    """Why `text` must not reach BFCL's decoder, or None when it may."""
    if len(text) > limits.max_chars:
        return f"text longer than {limits.max_chars} characters"
    source = bfcl_python_input(text)
    try:
        tree = ast.parse(source, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None  # BFCL fails on the same parse before it evaluates anything
    count = 0
    for node in ast.walk(tree):
        count += 1
        if count > limits.max_nodes:
            return f"more than {limits.max_nodes} syntax nodes"
        if isinstance(node, ast.Lambda):
            return "a lambda expression"
        if isinstance(node, ast.BinOp):
            reason = _arith_reason(node, limits)
            if reason is not None:
                return reason
    return None


def _arith_reason(node: ast.BinOp, limits: ParseLimits) -> str | None:
    size = sum(1 for _ in ast.walk(node))
    if size > MAX_ARITH_NODES:
        return f"an arithmetic expression of more than {MAX_ARITH_NODES} nodes"
    try:
        _evaluate(node, limits)
    except _Refused as exc:
        return f"arithmetic that is not plain: {exc}"
    except _Harmless:
        pass
    return None


def _evaluate(node: ast.AST, limits: ParseLimits) -> Any:
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, (bool, int, float, str)):
            return value
        raise _Refused(f"constant of type {type(value).__name__}")
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        operand = _evaluate(node.operand, limits)
        if isinstance(operand, str):
            raise _Harmless()
        return -operand if isinstance(node.op, ast.USub) else +operand
    if isinstance(node, ast.BinOp):
        left = _evaluate(node.left, limits)
        right = _evaluate(node.right, limits)
        return _apply(node.op, left, right, limits)
    raise _Refused(type(node).__name__)


def _apply(op: ast.operator, a: Any, b: Any, limits: ParseLimits) -> Any:
    numeric = (int, float)
    if isinstance(op, ast.Add):
        if isinstance(a, str) and isinstance(b, str):
            if len(a) + len(b) > limits.max_chars:
                raise _Refused("string too long")
            return a + b
        if isinstance(a, numeric) and isinstance(b, numeric):
            return _bounded(a + b)
        raise _Harmless()
    if isinstance(op, ast.Mult):
        if isinstance(a, numeric) and isinstance(b, numeric):
            if isinstance(a, int) and isinstance(b, int) and a.bit_length() + b.bit_length() > MAX_INT_BITS:
                raise _Refused("integer too large")
            return _bounded(a * b)
        if isinstance(a, int) and isinstance(b, str):
            a, b = b, a
        if isinstance(a, str) and isinstance(b, int) and not isinstance(b, bool):
            if len(a) * max(b, 0) > limits.max_chars:
                raise _Refused("string too long")
            return a * b
        raise _Harmless()
    if isinstance(op, (ast.Sub, ast.Div, ast.FloorDiv, ast.Mod)):
        if not (isinstance(a, numeric) and isinstance(b, numeric)):
            if isinstance(op, ast.Mod) and isinstance(a, str):
                raise _Refused("string formatting")  # "%999999999d" % 1 builds a huge string
            raise _Harmless()
        try:
            if isinstance(op, ast.Sub):
                return _bounded(a - b)
            if isinstance(op, ast.Div):
                return a / b
            if isinstance(op, ast.FloorDiv):
                return a // b
            return a % b
        except (ZeroDivisionError, OverflowError) as exc:
            raise _Harmless() from exc
    if isinstance(op, ast.Pow):
        if not (isinstance(a, numeric) and isinstance(b, numeric)):
            raise _Harmless()
        # float powers take constant time (or overflow); only int ** positive int can grow
        if isinstance(a, int) and isinstance(b, int) and b > 0 and max(a.bit_length(), 1) * b > MAX_INT_BITS:
            raise _Refused("integer power too large")
        try:
            return _bounded(a**b)
        except (ZeroDivisionError, OverflowError) as exc:
            raise _Harmless() from exc
    raise _Refused(type(op).__name__)


def _bounded(value: Any) -> Any:
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise _Refused("integer too large")
    if isinstance(value, complex):
        raise _Refused("complex result")
    return value

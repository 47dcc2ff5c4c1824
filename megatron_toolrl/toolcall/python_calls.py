"""BFCL's python-call answers (`[f(a=1), mod.g(b='x')]`) decoded from untrusted text, never run.

The text goes through `ast.parse` only after `prescan.scan_python` has bounded its tokens and
bracket nesting. The syntax tree is then walked by hand and only literals are accepted: str, int,
float, bool and None constants, negative numbers, lists, tuples and dicts of them. A name, an
attribute, an operator, a call, a comprehension, a lambda or an f-string in a value is a parse
error, as are positional or `**` arguments, repeated argument names and repeated dict keys.

The text is normalised as BFCL's `default_decode_ast_prompting` does (strip backticks, newlines
and spaces at both ends, add the enclosing `[` / `]` when missing), so the calls decoded from an
answer made of literals are the ones BFCL decodes. BFCL is more lenient elsewhere: it evaluates
arithmetic (`2*3`), turns bare names into strings, ignores positional arguments and keeps the last
of repeated arguments; here all of those are errors.
"""

from __future__ import annotations

import ast
import math
from typing import Any

from megatron_toolrl.data.task import ToolCall
from megatron_toolrl.toolcall.budget import Budget
from megatron_toolrl.toolcall.errors import ParseFailure
from megatron_toolrl.toolcall.prescan import scan_python

_SCALARS = (str, int, float, bool, type(None))
_KEY_TYPES = (str, int, float, bool, type(None))
# Brackets around an argument value: the call list `[` and the call's `(`.
_OUTER_LEVELS = 2


def normalise_python_text(text: str) -> str:
    """BFCL's framing: trim "`", "\\n" and " " at both ends, then wrap in [ ] unless already there."""
    text = text.strip("`\n ")
    if not text.startswith("["):
        text = "[" + text
    if not text.endswith("]"):
        text = text + "]"
    return text


def parse_python_calls(text: str, budget: Budget) -> list[ToolCall]:
    """Decode a python call list. Raise ParseFailure on anything but literal keyword calls."""
    limits = budget.limits
    source = normalise_python_text(text)
    budget.tokens += scan_python(source, limits.max_tokens - budget.tokens, limits.max_depth, _OUTER_LEVELS)
    budget.check_time("scan")
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        raise ParseFailure(f"invalid python call syntax: {exc.msg}"[:200]) from None
    except (ValueError, UnicodeError, MemoryError, RecursionError) as exc:
        # null bytes, lone surrogates (unencodable), or a tree too deep for the parser
        raise ParseFailure(f"python call text rejected by the parser: {type(exc).__name__}") from None
    budget.check_time("ast.parse")
    body = tree.body
    if not isinstance(body, ast.List):
        raise ParseFailure("expected a list of calls")
    if len(body.elts) > limits.max_calls:
        raise ParseFailure(f"more than max_calls={limits.max_calls} calls")
    calls = [_call(elt, budget) for elt in body.elts]
    budget.check_time("walk")
    return calls


def _call(node: ast.expr, budget: Budget) -> ToolCall:
    if not isinstance(node, ast.Call):
        raise ParseFailure(f"expected a call, found {_describe(node)}")
    name = _dotted_name(node.func)
    if node.args:
        raise ParseFailure(f"call {name!r}: positional arguments are not allowed, write name=value")
    budget.node()
    arguments: dict[str, Any] = {}
    for keyword in node.keywords:
        if keyword.arg is None:
            raise ParseFailure(f"call {name!r}: ** arguments are not allowed")
        if keyword.arg in arguments:
            raise ParseFailure(f"call {name!r}: argument {keyword.arg!r} given twice")
        try:
            arguments[keyword.arg] = _literal(keyword.value, 1, budget)
        except ParseFailure as exc:
            raise ParseFailure(f"call {name!r:.80}, argument {keyword.arg!r:.80}: {exc}") from None
    return ToolCall(name=name, arguments=arguments)


def _dotted_name(node: ast.expr) -> str:
    """`f` or `a.b.f`: a Name, or Attributes over a Name. Anything else (`f()()`, `x[0].f`) is an error."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        raise ParseFailure(f"a function name must be a dotted identifier, found {_describe(node)}")
    parts.append(node.id)
    return ".".join(reversed(parts))


def _literal(node: ast.expr, depth: int, budget: Budget) -> Any:
    """The value of a literal node; `depth` is the container nesting this node would open."""
    budget.node()
    if isinstance(node, ast.Constant):
        return _constant(node.value)
    if isinstance(node, ast.UnaryOp):
        # Only `-number`: `- -1`, `-x`, `not x`, `~1` and `+1` are not literals.
        operand = node.operand
        if isinstance(node.op, ast.USub) and isinstance(operand, ast.Constant):
            value = operand.value
            if type(value) in (int, float):
                return -_constant(value)
        raise ParseFailure(f"unsupported unary expression {_describe(node)}")
    if isinstance(node, (ast.List, ast.Tuple, ast.Dict)):
        if depth > budget.limits.max_depth:
            raise ParseFailure(f"arguments nested deeper than max_depth={budget.limits.max_depth}")
        if isinstance(node, ast.List):
            return [_literal(e, depth + 1, budget) for e in node.elts]
        if isinstance(node, ast.Tuple):
            return tuple(_literal(e, depth + 1, budget) for e in node.elts)
        out: dict[Any, Any] = {}
        for key_node, value_node in zip(node.keys, node.values, strict=True):
            if key_node is None:
                raise ParseFailure("** unpacking in a dict is not a literal")
            key = _literal(key_node, depth + 1, budget)
            if not isinstance(key, _KEY_TYPES):
                raise ParseFailure(f"dict keys must be scalars, found {_describe(key_node)}")
            if key in out:
                raise ParseFailure(f"duplicate dict key {key!r:.60}")
            out[key] = _literal(value_node, depth + 1, budget)
        return out
    raise ParseFailure(f"not a literal value: {_describe(node)}")


def _constant(value: Any) -> Any:
    if not isinstance(value, _SCALARS):  # bytes, complex, Ellipsis
        raise ParseFailure(f"unsupported constant of type {type(value).__name__}")
    if type(value) is float and not math.isfinite(value):  # 1e999
        raise ParseFailure("number is not finite")
    return value


def _describe(node: ast.AST) -> str:
    """A short, bounded name for an AST node, for error messages (never the node's full source)."""
    return type(node).__name__

"""Reading the python-call answers of datasets: `[f(a=1), Get Weather(city="Oslo")]`.

ToolACE writes its ground truth in BFCL's prompting syntax, but its tool names often hold spaces
or dashes ("Market Trends API"), which Python's grammar does not allow. So the call list is split
by hand (name = the text before `(`, arguments = the text up to the matching `)`, skipping
brackets and quoted strings), and only each argument list is handed to `ast.parse` and read
as literals. Nothing is evaluated. This is for dataset files; model output goes through
`megatron_toolrl.toolcall`, which is stricter.
"""

from __future__ import annotations

import ast
from typing import Any

from megatron_toolrl.data.task import ToolCall

MAX_TEXT = 200_000
"""Longest answer text read (characters)."""
MAX_DEPTH = 32
"""Deepest bracket nesting inside one argument list."""

# Bare words that datasets use for JSON literals inside python-call answers.
_NAMES: dict[str, Any] = {"True": True, "False": False, "None": None, "true": True, "false": False, "null": None}


class CallSyntaxError(ValueError):
    """The text is not a list of `name(key=value, ...)` calls with literal values."""


def looks_like_call_list(text: str) -> bool:
    """True for text shaped like a call list (`[...(...)...]`), the signal that a dataset turn is a call."""
    t = text.strip()
    return t.startswith("[") and t.endswith("]") and "(" in t


def parse_call_list(text: str) -> list[ToolCall]:
    """The calls of `[f(a=1), g(b="x")]`; CallSyntaxError with the reason if it is not one."""
    if len(text) > MAX_TEXT:
        raise CallSyntaxError(f"answer is {len(text)} characters long (limit {MAX_TEXT})")
    body = text.strip()
    if not (body.startswith("[") and body.endswith("]")):
        raise CallSyntaxError("a call list must be enclosed in [ ]")
    body = body[1:-1]
    calls: list[ToolCall] = []
    pos = 0
    while True:
        pos = _skip(body, pos, " \t\r\n,")
        if pos >= len(body):
            return calls
        open_at = body.find("(", pos)
        if open_at < 0:
            raise CallSyntaxError(f"expected name(...) at {body[pos : pos + 40]!r}")
        name = body[pos:open_at].strip()
        if not name or any(c in name for c in "\"'[]{}()=,"):
            raise CallSyntaxError(f"bad function name {name!r}")
        close_at = _matching_paren(body, open_at)
        calls.append(ToolCall(name, _parse_arguments(body[open_at + 1 : close_at], name)))
        pos = close_at + 1
        rest = _skip(body, pos, " \t\r\n")
        if rest < len(body) and body[rest] != ",":
            raise CallSyntaxError(f"expected ',' between calls, found {body[rest : rest + 20]!r}")


def _skip(text: str, pos: int, chars: str) -> int:
    while pos < len(text) and text[pos] in chars:
        pos += 1
    return pos


def _matching_paren(text: str, open_at: int) -> int:
    """Index of the `)` closing the `(` at `open_at`, skipping strings and nested brackets."""
    depth = 0
    quote = ""
    i = open_at
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\":
                i += 2
                continue
            if c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        elif c in "([{":
            depth += 1
            if depth > MAX_DEPTH:
                raise CallSyntaxError(f"nested deeper than {MAX_DEPTH} levels")
        elif c in ")]}":
            depth -= 1
            if depth == 0:
                if c != ")":
                    raise CallSyntaxError(
                        f"unbalanced brackets in the arguments of the call at {text[open_at - 10 : open_at + 20]!r}"
                    )
                return i
        i += 1
    raise CallSyntaxError("unclosed '(' or string in a call")


def _parse_arguments(args: str, name: str) -> dict[str, Any]:
    try:
        tree = ast.parse(f"f({args})", mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise CallSyntaxError(f"arguments of {name!r} are not `key=value` literals: {exc}") from None
    call = tree.body
    assert isinstance(call, ast.Call)
    if call.args:
        raise CallSyntaxError(f"{name!r} has positional arguments; only key=value is accepted")
    out: dict[str, Any] = {}
    for keyword in call.keywords:
        if keyword.arg is None:
            raise CallSyntaxError(f"{name!r} uses **kwargs")
        if keyword.arg in out:
            raise CallSyntaxError(f"{name!r} repeats argument {keyword.arg!r}")
        out[keyword.arg] = _literal(keyword.value, name, keyword.arg)
    return out


def _literal(node: ast.AST, name: str, arg: str) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, int, float, bool, type(None))):
        return node.value
    if (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, (ast.USub, ast.UAdd))
        and isinstance(node.operand, ast.Constant)
        and isinstance(node.operand.value, (int, float))
        and not isinstance(node.operand.value, bool)
    ):
        return -node.operand.value if isinstance(node.op, ast.USub) else node.operand.value
    if isinstance(node, ast.Name) and node.id in _NAMES:
        return _NAMES[node.id]
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return [_literal(e, name, arg) for e in node.elts]
    if isinstance(node, ast.Dict):
        out: dict[str, Any] = {}
        for key, value in zip(node.keys, node.values, strict=True):
            if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
                raise CallSyntaxError(f"{name}({arg}=...): dict keys must be strings")
            out[key.value] = _literal(value, name, arg)
        return out
    raise CallSyntaxError(f"{name}({arg}=...): value is not a literal ({type(node).__name__})")

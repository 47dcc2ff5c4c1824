"""Cheap bounds on call text, measured before `json.loads` or `ast.parse` sees it.

Both decoders cost time per token and recurse per nesting level: `json.loads` raises
RecursionError near depth 1,000, and `ast.parse` takes ~1 us per token and, on deep input, tens of
milliseconds before a MemoryError or RecursionError. So the text is measured first, with work
done in C (str.count, bytes.translate, one regex whose matches are bounded beforehand):

1. quote characters are counted: each string literal needs two, so too many quotes is too many
   tokens, and the regex below then has a bounded number of matches;
2. string literals are blanked to `""` (they are one token each and their brackets do not count);
3. the rest is mapped byte by byte to word / space / punctuation classes, and tokens are counted as
   punctuation bytes plus word starts;
4. bracket nesting is measured on the brackets alone (at most `max_tokens` of them).

Text over a bound is rejected without being decoded. The scan over-estimates by design (a
quote inside a string counts in step 1): it may reject odd text a decoder would accept, never the
reverse. The decoders' walkers enforce the exact limits afterwards.
"""

from __future__ import annotations

import re

from megatron_toolrl.toolcall.errors import ParseFailure

# String literals, written "unrolled" (`[^"\\]*(?:\\.[^"\\]*)*`) so the engine runs without
# backtracking per character.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
# Python: triple- or single-quoted. Every branch starts with a quote, so the engine skips ahead to
# quotes in C; a prefix (r, b, f, ...) stays in front of the blank, where f-strings are spotted.
_PY_STRING = re.compile(
    r"""'''[^'\\]*(?:(?:\\.|'(?!''))[^'\\]*)*'''"""
    r'''|"""[^"\\]*(?:(?:\\.|"(?!""))[^"\\]*)*"""'''
    r"""|'[^'\\\n]*(?:\\.[^'\\\n]*)*'"""
    r'''|"[^"\\\n]*(?:\\.[^"\\\n]*)*"''',
    re.DOTALL,
)
# An f-string holds code inside its braces that the blanking would hide from the count. Any string
# right after an f (`f""`, `rf""`, `fr""`) is refused: when it is not an f-string, it is a name or
# keyword glued to a string (`if"x"`), which is not a literal call either.
_PY_FSTRING = re.compile(r'[fF][rRbBuU]?""|[rRbBuU][fF]""')


def _byte_classes() -> bytes:
    """Byte -> b"a" (word: letters, digits, _, non-ASCII, the quotes left by blanking), b" " (space), b"." (other)."""
    table = bytearray(b"." * 256)
    for b in range(256):
        ch = chr(b)
        if b >= 0x80 or ch.isalnum() or ch in "_\"'":
            table[b] = ord("a")
        elif ch in " \t\n\r\f\v":
            table[b] = ord(" ")
    return bytes(table)


_CLASSES = _byte_classes()
_NOT_BRACKETS = bytes(b for b in range(256) if chr(b) not in "[](){}")
_OPENERS = frozenset(b"[({")


def scan_json(text: str, max_tokens: int, max_depth: int, outer_levels: int) -> int:
    """Check JSON text against the bounds (ParseFailure if over); return its token estimate.

    `outer_levels`: brackets of the call syntax around the arguments (not counted in `max_depth`).
    """
    if text.count('"') > 2 * max_tokens:
        raise ParseFailure(f"too many string literals (max_tokens={max_tokens})")
    return _measure(_JSON_STRING.sub('""', text), max_tokens, max_depth, outer_levels)


def scan_python(text: str, max_tokens: int, max_depth: int, outer_levels: int) -> int:
    """Check Python call text against the bounds (ParseFailure if over); return its token estimate.

    Comments and f-strings are refused here: a quote inside a comment, or code inside an f-string's
    braces, would make the string blanking hide code from the count.
    """
    if text.count('"') + text.count("'") > 2 * max_tokens:
        raise ParseFailure(f"too many string literals (max_tokens={max_tokens})")
    blanked = _PY_STRING.sub('""', text)
    if "#" in blanked:
        raise ParseFailure("comments are not allowed in a call list")
    if _PY_FSTRING.search(blanked):
        raise ParseFailure("f-strings are not literal values")
    return _measure(blanked, max_tokens, max_depth, outer_levels)


def _measure(blanked: str, max_tokens: int, max_depth: int, outer_levels: int) -> int:
    # surrogatepass: a lone surrogate is still one (word) character, not an encoding error.
    raw = blanked.encode("utf-8", "surrogatepass")
    classes = raw.translate(_CLASSES)
    tokens = classes.count(b".") + classes.count(b" a") + classes.count(b".a") + classes.startswith(b"a")
    if tokens > max_tokens:
        raise ParseFailure(f"too many tokens: about {tokens} > max_tokens={max_tokens}")
    brackets = raw.translate(None, _NOT_BRACKETS)
    openers = len(brackets) - brackets.count(b"]") - brackets.count(b")") - brackets.count(b"}")
    allowed = max_depth + outer_levels
    if openers <= allowed:  # nesting cannot exceed the number of opening brackets
        return tokens
    depth = 0
    for byte in brackets:  # at most max_tokens bytes: each bracket is a token
        if byte in _OPENERS:
            depth += 1
            if depth > allowed:
                raise ParseFailure(f"arguments nested deeper than max_depth={max_depth}")
        elif depth > 0:
            depth -= 1
    return tokens

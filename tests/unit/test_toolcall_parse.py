"""parse_calls / render_calls for the four output formats: round trips, layout rules, edge cases, limits."""

from __future__ import annotations

import json

import pytest

from megatron_toolrl.data.task import ToolCall
from megatron_toolrl.toolcall import OutputFormat, ParseLimits, parse_calls, render_calls

FORMATS = list(OutputFormat)
JSON_FORMATS = [OutputFormat.HERMES, OutputFormat.JSON_LINES, OutputFormat.JSON_LIST]

CALLS = [
    ToolCall("math.factorial", {"number": 5}),
    ToolCall("get_weather", {
        "city": "São Paulo, BR", "quote": "it's \"fine\" # not a comment '''", "days": -3, "ratio": 2.5e-07,
        "flags": [True, False, None], "nested": {"k": [1, {"deep": "x"}], "empty": {}}, "pair": (1, "b"),
        "brackets": "[[{(", "tag": "<tool_call> inside a string", "big": 10**30, "neg_float": -0.5,
    }),
    ToolCall("no_args", {}),
]


def _jsonish(calls: list[ToolCall]) -> list[ToolCall]:
    """What a JSON round trip gives back: tuples become lists."""
    return [ToolCall(c.name, json.loads(json.dumps(c.arguments))) for c in calls]


DEFAULT = ParseLimits()


def _ok(text: str, fmt: OutputFormat, limits: ParseLimits = DEFAULT) -> list[ToolCall]:
    result = parse_calls(text, fmt, limits)
    assert result.ok, (fmt, text[:200], result.error)
    return result.calls


def _error(text: str, fmt: OutputFormat, limits: ParseLimits = DEFAULT) -> str:
    result = parse_calls(text, fmt, limits)
    assert not result.ok and result.calls == [], (fmt, text[:200], result)
    return result.error


# --- round trips ---------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
def test_render_then_parse_round_trips(fmt):
    expected = CALLS if fmt is OutputFormat.PYTHON else _jsonish(CALLS)
    assert _ok(render_calls(CALLS, fmt), fmt) == expected
    for n in range(len(CALLS)):
        assert _ok(render_calls(CALLS[:n], fmt), fmt) == expected[:n]


def test_rendered_layouts():
    calls = [ToolCall("f", {"a": 1}), ToolCall("g", {"b": "x"})]
    assert render_calls(calls, OutputFormat.HERMES) == (
        '<tool_call>\n{"name": "f", "arguments": {"a": 1}}\n</tool_call>\n'
        '<tool_call>\n{"name": "g", "arguments": {"b": "x"}}\n</tool_call>')
    assert render_calls(calls, OutputFormat.JSON_LINES) == (
        '<tool_call>\n{"name": "f", "parameters": {"a": 1}}\n{"name": "g", "parameters": {"b": "x"}}\n</tool_call>')
    assert render_calls(calls, OutputFormat.JSON_LIST) == (
        '<tool_call>\n[{"name": "f", "arguments": {"a": 1}}, {"name": "g", "arguments": {"b": "x"}}]\n</tool_call>')
    assert render_calls(calls, OutputFormat.PYTHON) == "[f(a=1), g(b='x')]"
    for fmt in FORMATS:
        assert render_calls([], fmt) == ""
        assert _ok("", fmt) == []


def test_render_refuses_what_a_format_cannot_hold():
    with pytest.raises(ValueError, match="dotted identifier"):
        render_calls([ToolCall("my-tool", {})], OutputFormat.PYTHON)
    with pytest.raises(ValueError, match="not a python identifier"):
        render_calls([ToolCall("f", {"class": 1})], OutputFormat.PYTHON)
    for fmt in FORMATS:
        with pytest.raises(ValueError):
            render_calls([ToolCall("f", {"x": float("nan")})], fmt)
    with pytest.raises(TypeError, match="keys must be strings"):
        render_calls([ToolCall("f", {"x": {1: "a"}})], OutputFormat.HERMES)
    # python can write int keys, and they come back
    assert _ok(render_calls([ToolCall("f", {"x": {1: "a"}})], OutputFormat.PYTHON), OutputFormat.PYTHON) == [
        ToolCall("f", {"x": {1: "a"}})]


# --- think blocks, whitespace, surrounding text --------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
def test_think_block_is_recorded(fmt):
    body = render_calls(CALLS[:1], fmt)
    result = parse_calls(f"  \n<think>I should call f. [x(y=1)] <tool_call></think>\n{body}", fmt)
    assert result.ok and result.has_think and result.think == "I should call f. [x(y=1)] <tool_call>"
    assert result.calls == _jsonish(CALLS[:1])
    plain = parse_calls(body, fmt)
    assert plain.ok and not plain.has_think and plain.think == ""
    # truncated inside the think block
    assert "unterminated <think>" in _error("<think>still thinking about " + body, fmt)


@pytest.mark.parametrize("fmt", FORMATS)
def test_surrounding_whitespace_is_ignored(fmt):
    body = render_calls(CALLS[:2], fmt)
    assert _ok("\n\n  " + body + "\n  \n", fmt) == _ok(body, fmt)


def test_tag_formats_allow_free_text_around_blocks():
    call = ToolCall("f", {"a": 1})
    for fmt in JSON_FORMATS:
        text = "Let me look that up.\n" + render_calls([call], fmt) + "\n<response>Done.</response>"
        assert _ok(text, fmt) == [call]
        assert _ok("I cannot help with that.", fmt) == []


def test_python_answer_is_the_whole_text():
    assert "invalid python call syntax" in _error("Sure! [f(a=1)]", OutputFormat.PYTHON)
    assert _error("[f(a=1)] hope this helps", OutputFormat.PYTHON)
    assert _error("I cannot help with that.", OutputFormat.PYTHON)
    # BFCL's framing: backticks, newlines and spaces trimmed, brackets added when missing
    assert _ok("```\nf(a=1), g(b=2)\n```", OutputFormat.PYTHON) == [ToolCall("f", {"a": 1}), ToolCall("g", {"b": 2})]
    assert _ok("[]", OutputFormat.PYTHON) == []


def test_pretty_printed_json_is_accepted():
    obj = {"name": "f", "arguments": {"a": [1, 2], "b": {"c": "d"}}}
    assert _ok(f"<tool_call>\n{json.dumps(obj, indent=2)}\n</tool_call>", OutputFormat.HERMES) == [
        ToolCall("f", obj["arguments"])]
    obj_lines = {"name": "f", "parameters": obj["arguments"]}
    two = json.dumps(obj_lines, indent=2) + "\n" + json.dumps(obj_lines)
    assert len(_ok(f"<tool_call>\n{two}\n</tool_call>", OutputFormat.JSON_LINES)) == 2
    assert _ok(f"<tool_call>{json.dumps([obj], indent=4)}</tool_call>", OutputFormat.JSON_LIST) == [
        ToolCall("f", obj["arguments"])]


# --- blocks ------------------------------------------------------------------------------------

def test_block_counts_per_format():
    one = render_calls([ToolCall("f", {"a": 1})], OutputFormat.HERMES)
    assert len(_ok(one + "\nand\n" + one, OutputFormat.HERMES)) == 2
    for fmt in (OutputFormat.JSON_LINES, OutputFormat.JSON_LIST):
        block = render_calls([ToolCall("f", {"a": 1})], fmt)
        assert "expected one <tool_call> block, found 2" in _error(block + "\n" + block, fmt)
    assert "empty <tool_call> block" in _error("<tool_call>\n \n</tool_call>", OutputFormat.JSON_LINES)
    assert _ok("<tool_call>[]</tool_call>", OutputFormat.JSON_LIST) == []
    assert _error("<tool_call></tool_call>", OutputFormat.HERMES)


@pytest.mark.parametrize("fmt", JSON_FORMATS)
def test_malformed_tags(fmt):
    block = render_calls([ToolCall("f", {"a": 1})], fmt)
    assert "without a matching" in _error("</tool_call>" + block, fmt)
    assert "without a matching" in _error(block + "</tool_call>", fmt)
    assert "nested <tool_call>" in _error("<tool_call>" + block, fmt)


@pytest.mark.parametrize("fmt", FORMATS)
def test_truncated_outputs_never_give_a_wrong_call(fmt):
    calls = [ToolCall("f", {"a": [1, 2], "b": "text"}), ToolCall("g", {"c": {"d": 1.5}})]
    text = "<think>plan</think>" + render_calls(calls, fmt)
    expected = calls if fmt is OutputFormat.PYTHON else _jsonish(calls)
    for cut in range(len(text)):
        result = parse_calls(text[:cut], fmt)
        # A prefix either fails or is a prefix of the calls: a complete call cut before the next
        # one (hermes block by block; python because BFCL's framing adds the missing "]").
        assert result.calls == expected[:len(result.calls)], (cut, text[:cut], result)
        if fmt in (OutputFormat.JSON_LINES, OutputFormat.JSON_LIST):
            assert not result.calls, (cut, text[:cut])


# --- call objects --------------------------------------------------------------------------------

def test_argument_key_names():
    def block(obj):
        return "<tool_call>" + json.dumps(obj) + "</tool_call>"

    with_args = {"name": "f", "arguments": {"a": 1}}
    with_params = {"name": "f", "parameters": {"a": 1}}
    assert _ok(block(with_args), OutputFormat.JSON_LINES) == _ok(block(with_params), OutputFormat.JSON_LINES)
    assert "no 'arguments' key" in _error(block(with_params), OutputFormat.HERMES)
    listed = "<tool_call>" + json.dumps([with_params]) + "</tool_call>"
    assert "no 'arguments' key" in _error(listed, OutputFormat.JSON_LIST)
    assert "no 'parameters' or 'arguments'" in _error(block({"name": "f", "args": {}}), OutputFormat.JSON_LINES)
    assert "both" in _error(block({**with_args, "parameters": {}}), OutputFormat.JSON_LINES)
    assert "no 'name'" in _error(block({"function": "f", "arguments": {}}), OutputFormat.HERMES)
    assert "unexpected keys" in _error(block({**with_args, "id": "call_1"}), OutputFormat.HERMES)
    assert "non-empty string" in _error(block({"name": 3, "arguments": {}}), OutputFormat.HERMES)
    assert "non-empty string" in _error(block({"name": "", "arguments": {}}), OutputFormat.HERMES)
    assert "must be a JSON object" in _error(block({"name": "f", "arguments": '{"a": 1}'}), OutputFormat.HERMES)
    assert "must be a JSON object" in _error(block([with_args]), OutputFormat.HERMES)
    assert "JSON list" in _error(block(with_args), OutputFormat.JSON_LIST)


def test_json_values_that_are_refused():
    def hermes(args_text):
        return _error('<tool_call>{"name": "f", "arguments": ' + args_text + "}</tool_call>", OutputFormat.HERMES)

    assert "NaN is not a finite number" in hermes('{"a": NaN}')
    assert "not a finite number" in hermes('{"a": -Infinity}')
    assert "not finite" in hermes('{"a": 1e999}')
    assert "duplicate key 'a'" in hermes('{"a": 1, "a": 2}')
    assert "invalid JSON" in hermes('{"a": "line\nbreak"}')  # raw control character
    assert "invalid JSON" in hermes("{'a': 1}")
    assert "invalid JSON" in hermes('{"a": True}')
    assert "invalid JSON" in hermes('{"a": 1,}')
    assert "invalid JSON" in hermes('{"a": ' + "9" * 5000 + "}")  # over Python's int-string limit


def test_python_literals_accepted():
    text = "[mod.sub.f(a=-1, b=-2.5, c=(1,), d={'k': [None, True], 2: 'two'}, e=[], f=(), g={}, h=\"dq\", i='''tq''')]"
    assert _ok(text, OutputFormat.PYTHON) == [ToolCall("mod.sub.f", {
        "a": -1, "b": -2.5, "c": (1,), "d": {"k": [None, True], 2: "two"}, "e": [], "f": (), "g": {}, "h": "dq",
        "i": "tq"})]


@pytest.mark.parametrize("text,reason", [
    ("[f(1)]", "positional"),
    ("[f(a=1, a=2)]", "given twice"),
    ("[f(**kw)]", "** arguments"),
    ("[f(*a)]", "positional"),
    ("[f(a=x)]", "Name"),
    ("[f(a=os.path)]", "Attribute"),
    ("[f(a=g())]", "Call"),
    ("[f(a=1+2)]", "BinOp"),
    ("[f(a=9**9**9)]", "BinOp"),
    ("[f(a=lambda: 1)]", "Lambda"),
    ("[f(a=[x for x in y])]", "ListComp"),
    ("[f(a={1, 2})]", "Set"),
    ("[f(a=x[0])]", "Subscript"),
    ("[f(a=(y := 1))]", "NamedExpr"),
    ("[f(a=b'bytes')]", "bytes"),
    ("[f(a=1j)]", "complex"),
    ("[f(a=...)]", "ellipsis"),
    ("[f(a=- -1)]", "unary"),
    ("[f(a=+1)]", "unary"),
    ("[f(a=not 1)]", "unary"),
    ("[f(a=-True)]", "unary"),
    ("[f(a=1e999)]", "not finite"),
    ("[f(a={**d})]", "unpacking"),
    ("[f(a={'k': 1, 'k': 2})]", "duplicate dict key"),
    ("[f(a={(1, 2): 3})]", "dict keys must be scalars"),
    ("[f(a=f'{1}')]", "f-strings"),
    ("[f(a=rf'{1}')]", "f-strings"),
    ("[f(a=1)]  # note", "comments"),
    ("[f()()]", "dotted identifier"),
    ("[x[0].f()]", "dotted identifier"),
    ("[1, 2]", "expected a call"),
    ("[f(a=1)], [g(b=2)]", "expected a list"),
    ("[__import__('os').system('true')]", "dotted identifier"),
    ("[f(a=__import__('os').system('true'))]", "Call"),
    ("[f(a=1\x00)]", "null bytes"),
    ("[f(a='\ud800')]", "UnicodeEncodeError"),
])
def test_python_non_literals_are_errors(text, reason):
    assert reason in _error(text, OutputFormat.PYTHON)


def test_python_error_names_the_argument():
    assert "'b'" in _error("[f(a=1, b=open('x'))]", OutputFormat.PYTHON)


# --- limits --------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
def test_max_chars_is_checked_first(fmt):
    limits = ParseLimits(max_chars=200)
    text = render_calls([ToolCall("f", {"a": "x" * 100})], fmt)
    assert len(text) <= 200 and _ok(text, fmt, limits)
    padded = text + " " * (201 - len(text))
    assert "longer than max_chars=200" in _error(padded, fmt, limits)
    assert "longer than max_chars" in _error("x" * 10_000_000, fmt)


def _nested(depth: int) -> ToolCall:
    value: object = 1
    for _ in range(depth):
        value = [value]
    return ToolCall("f", {"a": value})


@pytest.mark.parametrize("fmt", FORMATS)
def test_max_depth_boundary(fmt):
    limits = ParseLimits(max_depth=5)
    assert _ok(render_calls([_nested(5)], fmt), fmt, limits) == [_nested(5)]
    assert "deeper than" in _error(render_calls([_nested(6)], fmt), fmt, limits)
    # far too deep: stopped by the pre-scan, before json/ast recurse
    nest = "[" * 990 + "]" * 990
    deep = {OutputFormat.PYTHON: f"[f(a={nest})]",
            OutputFormat.JSON_LIST: f'<tool_call>[{{"name": "f", "arguments": {{"a": {nest}}}}}]</tool_call>'}
    text = deep.get(fmt, f'<tool_call>{{"name": "f", "arguments": {{"a": {nest}}}}}</tool_call>')
    assert "arguments nested deeper than max_depth=32" in _error(text, fmt)


@pytest.mark.parametrize("fmt", FORMATS)
def test_max_calls_boundary(fmt):
    limits = ParseLimits(max_calls=4)
    calls = [ToolCall("f", {"i": i}) for i in range(5)]
    assert _ok(render_calls(calls[:4], fmt), fmt, limits) == calls[:4]
    assert "max_calls=4" in _error(render_calls(calls, fmt), fmt, limits)


@pytest.mark.parametrize("fmt", FORMATS)
def test_max_nodes_and_tokens(fmt):
    ten = render_calls([ToolCall("f", {"a": list(range(8))})], fmt)  # call + list + 8 ints = 10 values
    assert _ok(ten, fmt, ParseLimits(max_nodes=11))
    assert "max_nodes=9" in _error(ten, fmt, ParseLimits(max_nodes=9))
    assert "too many tokens" in _error(ten, fmt, ParseLimits(max_tokens=10))
    many = render_calls([ToolCall("f", {"a": list(range(3000))})], fmt)
    assert "too many tokens" in _error(many, fmt)


@pytest.mark.parametrize("fmt", FORMATS)
def test_time_budget(fmt):
    text = render_calls(CALLS, fmt)
    assert "time budget" in _error(text, fmt, ParseLimits(max_seconds=1e-9))


def test_limits_validate_themselves():
    with pytest.raises(ValueError, match="max_depth"):
        ParseLimits(max_depth=0)
    with pytest.raises(ValueError, match="max_seconds"):
        ParseLimits(max_seconds=0)


def test_untrusted_text_of_any_type_gives_an_error():
    assert "must be a str" in _error(None, OutputFormat.HERMES)  # type: ignore[arg-type]
    assert "must be a str" in _error(b"[f()]", OutputFormat.PYTHON)  # type: ignore[arg-type]
    # the format is a trusted argument: a typo is a programming error
    with pytest.raises(ValueError):
        parse_calls("", "yaml")  # type: ignore[arg-type]
    assert _ok("[f(a=1)]", "python") == [ToolCall("f", {"a": 1})]  # type: ignore[arg-type]

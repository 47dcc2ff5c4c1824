"""The words of the prompt: the task instruction per output format, the `<think>` requirement,
ToolExpander's self-exemplar instruction, and the answers shown in demonstrations.

The format descriptions match what `toolcall.parse_calls` reads (see its module docstring). A
"no call" answer is a plain sentence in the tag formats and `[]` in the python format, both of
which parse as an answer with no call.
"""

from __future__ import annotations

from typing import Any

from megatron_toolrl.data.demos import Demo
from megatron_toolrl.data.task import ToolCall
from megatron_toolrl.toolcall import OutputFormat, render_calls

PREAMBLE = "You can call the functions listed below. Take every argument value from the user's request."

FORMAT_INSTRUCTIONS: dict[OutputFormat, str] = {
    OutputFormat.HERMES: (
        "Write each call as a JSON object in its own <tool_call></tool_call> block:\n"
        '<tool_call>\n{"name": "function_name", "arguments": {"param": "value"}}\n</tool_call>'
    ),
    OutputFormat.JSON_LINES: (
        "Write all calls in one <tool_call></tool_call> block, one JSON object per line:\n"
        '<tool_call>\n{"name": "function_name", "parameters": {"param": "value"}}\n'
        '{"name": "other_function", "parameters": {"param": "value"}}\n</tool_call>'
    ),
    OutputFormat.JSON_LIST: (
        "Write all calls in one <tool_call></tool_call> block as a JSON list:\n"
        '<tool_call>\n[{"name": "function_name", "arguments": {"param": "value"}}, '
        '{"name": "other_function", "arguments": {"param": "value"}}]\n</tool_call>'
    ),
    OutputFormat.PYTHON: (
        "Answer with only a list of calls with keyword arguments, in Python syntax:\n"
        '[function_name(param="value", other_param=2), other_function(param="value")]'
    ),
}
"""How each OutputFormat is described to the model (kept short: small models, short prompts)."""

NO_CALL_TEXT: dict[OutputFormat, str] = {
    OutputFormat.HERMES: "None of the available functions can do this.",
    OutputFormat.JSON_LINES: "None of the available functions can do this.",
    OutputFormat.JSON_LIST: "None of the available functions can do this.",
    OutputFormat.PYTHON: "[]",
}
"""The answer when no function fits (a valid no-call answer for `parse_calls`)."""

NO_CALL_INSTRUCTIONS: dict[OutputFormat, str] = {
    fmt: "If no function fits the request, call none and answer: " + text for fmt, text in NO_CALL_TEXT.items()
}

THINK_INSTRUCTION = "First think step by step inside <think></think>, then answer."

SELF_EXEMPLAR_INSTRUCTION = (
    "Inside <think>, first write an <example></example> holding an example call of one of the functions "
    "(made-up values, answer format), check it against the function's parameters, then reason about the request."
)
"""ToolExpander's Self-Exemplifying Thinking (arXiv 2510.07737): the model writes and analyses its
own example before answering. The tag names are our choice; rewards.ExemplarConfig reads them."""


def system_instruction(fmt: OutputFormat, think: bool, self_exemplar: bool) -> str:
    """The instruction placed in the system turn (instruct) or at the top of the text (zero)."""
    if self_exemplar and not think:
        raise ValueError("self_exemplar=True needs think=True: the example is written inside <think>")
    fmt = OutputFormat(fmt)
    parts = [PREAMBLE, FORMAT_INSTRUCTIONS[fmt], NO_CALL_INSTRUCTIONS[fmt]]
    if think:
        parts.append(THINK_INSTRUCTION)
    if self_exemplar:
        parts.append(SELF_EXEMPLAR_INSTRUCTION)
    return "\n\n".join(parts)


def example_call(tool: dict[str, Any]) -> ToolCall:
    """A call of `tool` with placeholder values of the right types (the self-exemplar demo's example)."""
    params = tool["parameters"]
    return ToolCall(
        tool["name"], {name: _placeholder(params["properties"][name]) for name in params.get("required", [])}
    )


def _placeholder(schema: dict[str, Any]) -> Any:
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "integer":
        return 1
    if kind == "float":
        return 1.5
    if kind == "boolean":
        return True
    if kind in ("array", "tuple"):
        return (
            [_placeholder(schema["items"])]
            if isinstance(schema.get("items"), dict) and "type" in schema["items"]
            else []
        )
    if kind == "dict":
        props = schema.get("properties", {})
        return {k: _placeholder(v) for k, v in props.items() if k in schema.get("required", props)}
    return "example"


def demo_answer(demo: Demo, fmt: OutputFormat, think: bool, self_exemplar: bool) -> str:
    """What the assistant says in a demonstration: a short reasoning (when asked for) and the calls."""
    fmt = OutputFormat(fmt)
    answer = render_calls(demo.calls, fmt) if demo.calls else NO_CALL_TEXT[fmt]
    if not think:
        return answer
    return f"<think>{_demo_thought(demo, fmt, self_exemplar)}</think>\n{answer}"


def _demo_thought(demo: Demo, fmt: OutputFormat, self_exemplar: bool) -> str:
    tools = {t["name"]: t for t in demo.task.tools}
    if not demo.calls:
        names = ", ".join(tools) or "none"
        thought = f"The user asks for something that none of the functions ({names}) does, so I call none."
        example_tool = next(iter(tools.values()), None)
    else:
        called = list(dict.fromkeys(c.name for c in demo.calls))
        count = "one call" if len(demo.calls) == 1 else f"{len(demo.calls)} calls"
        thought = f"The request needs {count} of {', '.join(called)}; I take each argument value from the user's words."
        example_tool = tools.get(called[0])
    if not self_exemplar or example_tool is None:
        return thought
    example = render_calls([example_call(example_tool)], fmt)
    params = ", ".join(example_tool["parameters"].get("required", [])) or "no required parameters"
    return (
        f"<example>{example}</example> This example calls {example_tool['name']} with its required "
        f"parameters ({params}), each of the right type. {thought}"
    )

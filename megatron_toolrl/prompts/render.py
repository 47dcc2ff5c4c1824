"""`render`: a task (plus optional demonstrations) -> the prompt text the model continues.

Two styles:
- `instruct`: chat models. Messages go through the model's chat template with the tools
  (`chat.resolve_template` falls back to our Hermes template when the model's ignores tools).
  The system turn holds the instruction (`instructions.system_instruction`); demonstrations are
  earlier user/assistant turns.
- `zero`: base models (Tool Zero, arXiv 2511.01934). Plain text with no chat tokens: instruction,
  tool list, demonstrations as `User:`/`Assistant:` exchanges, the request, then `Assistant:`.

Demonstration answers and earlier calls in a task's history are written with
`toolcall.render_calls` in the task's output format, so everything the model reads uses the
format it must write.
"""

from __future__ import annotations

from typing import Any, Literal, Sequence

from transformers import PreTrainedTokenizerBase

from megatron_toolrl.data.demos import Demo
from megatron_toolrl.data.task import ToolCall, ToolTask
from megatron_toolrl.prompts.chat import resolve_template
from megatron_toolrl.prompts.instructions import demo_answer, system_instruction
from megatron_toolrl.prompts.tools import tool_signature, tools_block
from megatron_toolrl.toolcall import OutputFormat, render_calls

PromptStyle = Literal["instruct", "zero"]

ZERO_ROLES = {"user": "User", "assistant": "Assistant", "tool": "Tool", "system": "System"}
"""Speaker labels of the zero (base-model) template."""


def render(
    task: ToolTask,
    tokenizer_or_template: PreTrainedTokenizerBase | str | None,
    style: PromptStyle,
    fmt: OutputFormat,
    think: bool,
    few_shot: Sequence[Demo] = (),
    self_exemplar: bool = False,
) -> str:
    """The prompt for `task`, ending where the model starts writing its answer.

    tokenizer_or_template: an HF tokenizer with a chat template, or a chat template string
        (instruct style); ignored by the zero style, which may pass None.
    fmt: the output format the instruction asks for (and demonstrations use).
    think: ask for a `<think>...</think>` block before the answer.
    few_shot: demonstrations shown before the request (e.g. `DemoPool.select`).
    self_exemplar: ask the model to write and check an `<example>` call inside `<think>` (needs think).
    """
    fmt = OutputFormat(fmt)
    instruction = system_instruction(fmt, think, self_exemplar)
    if style == "instruct":
        if tokenizer_or_template is None:
            raise ValueError("style='instruct' needs a tokenizer or a chat template string")
        chat = resolve_template(tokenizer_or_template)
        return chat.render(chat_messages(task, instruction, few_shot, fmt, think, self_exemplar), task.tools)
    if style == "zero":
        return zero_prompt(task, instruction, few_shot, fmt, think, self_exemplar)
    raise ValueError(f"style must be 'instruct' or 'zero', got {style!r}")


def chat_messages(
    task: ToolTask, instruction: str, few_shot: Sequence[Demo], fmt: OutputFormat, think: bool, self_exemplar: bool
) -> list[dict[str, Any]]:
    """System turn, demonstration turns, then the task's own turns (history calls as text)."""
    history = list(task.messages)
    system = instruction
    if history and history[0].get("role") == "system":
        system = f"{instruction}\n\n{history[0].get('content', '')}"
        history = history[1:]
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}]
    for demo in few_shot:
        messages.append({"role": "user", "content": demo_question(demo, task)})
        messages.append({"role": "assistant", "content": demo_answer(demo, fmt, think, self_exemplar)})
    messages.extend(_plain_message(m, fmt) for m in history)
    return messages


def zero_prompt(
    task: ToolTask, instruction: str, few_shot: Sequence[Demo], fmt: OutputFormat, think: bool, self_exemplar: bool
) -> str:
    """The base-model prompt: plain text, no chat tokens."""
    header = [instruction]
    history = list(task.messages)
    if history and history[0].get("role") == "system":
        header.append(str(history[0].get("content", "")))
        history = history[1:]
    header.append("Functions:\n" + tools_block(task.tools))
    exchanges = []
    for demo in few_shot:
        exchanges.append(
            f"User: {demo_question(demo, task)}\nAssistant: {demo_answer(demo, fmt, think, self_exemplar)}"
        )
    turns = [
        f"{ZERO_ROLES.get(m['role'], m['role'].capitalize())}: {_plain_message(m, fmt)['content']}" for m in history
    ]
    exchanges.append("\n".join(turns + ["Assistant:"]))
    return "\n\n".join(header + exchanges)


def demo_question(demo: Demo, task: ToolTask) -> str:
    """The demonstration's request; if it used tools the task does not offer, they are listed first."""
    if set(demo.task.tool_names) <= set(task.tool_names):
        return demo.question
    listing = "; ".join(tool_signature(t) for t in demo.task.tools)
    return f"(Functions for this example: {listing})\n{demo.question}"


def _plain_message(message: dict[str, Any], fmt: OutputFormat) -> dict[str, Any]:
    """A history message as plain content: earlier calls written in the task's output format."""
    calls = message.get("tool_calls")
    content = str(message.get("content") or "")
    if message.get("role") == "assistant" and calls:
        written = render_calls([ToolCall(c["name"], c.get("arguments", {})) for c in calls], fmt)
        content = f"{content}\n{written}" if content else written
    return {"role": message["role"], "content": content}

"""Chat templates with tools: the model's own when it renders tools, ours when it does not.

`resolve_template` looks at a tokenizer's (or a bare template string's) chat template once:
- `native`: rendering a probe with a tool shows the tool, so the template is used as is;
- `hermes`: the template ignores tools and speaks ChatML (`<|im_start|>`, e.g. SmolLM2), so our
  Hermes-style ChatML template (templates/hermes_tools.jinja) is used instead;
- `system_text`: the template ignores tools and is not ChatML: the model's own template is kept
  (its special tokens are the ones the model knows) and the tool list goes into the system
  message as text, tool results into user turns.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

from transformers import PreTrainedTokenizerBase
from transformers.utils.chat_template_utils import render_jinja_template

from megatron_toolrl.prompts.tools import to_openai_tool, tools_block

ToolMode = Literal["native", "hermes", "system_text"]

_PROBE_TOOL_NAME = "zz_probe_tool_4242"
_PROBE_TOOL = {
    "type": "function",
    "function": {
        "name": _PROBE_TOOL_NAME,
        "description": "probe",
        "parameters": {"type": "object", "properties": {}, "required": []},
    },
}
_PROBE_MESSAGES = [{"role": "user", "content": "probe"}]


@functools.cache
def hermes_template() -> str:
    """The text of our Hermes-style ChatML template (shipped as package data)."""
    return (
        resources.files("megatron_toolrl.prompts").joinpath("templates/hermes_tools.jinja").read_text(encoding="utf-8")
    )


@dataclass(frozen=True)
class ChatTemplate:
    """How a model's prompts are rendered: which template, and how tools reach the prompt."""

    mode: ToolMode
    template: str
    """Jinja source actually used."""
    tokenizer: Any = None
    """The HF tokenizer when one was given (its special tokens fill the template); else None."""

    def render(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> str:
        """The prompt for `messages` with BFCL-layout `tools`, ending where the assistant starts."""
        openai_tools = [to_openai_tool(t) for t in tools] or None
        if self.mode == "system_text":
            messages = _tools_into_text(messages, tools)
            openai_tools = None
        if self.tokenizer is not None:
            out = self.tokenizer.apply_chat_template(
                messages, tools=openai_tools, add_generation_prompt=True, tokenize=False, chat_template=self.template
            )
            if not isinstance(out, str):
                raise TypeError(f"apply_chat_template returned {type(out).__name__}, expected str")
            return out
        return _render_string(self.template, messages, openai_tools)


def resolve_template(tokenizer_or_template: PreTrainedTokenizerBase | str) -> ChatTemplate:
    """Pick the template and tool mode for an HF tokenizer (with a `chat_template`) or a template string."""
    if isinstance(tokenizer_or_template, str):
        source, tokenizer = tokenizer_or_template, None
    elif isinstance(tokenizer_or_template, PreTrainedTokenizerBase):
        source, tokenizer = tokenizer_or_template.chat_template, tokenizer_or_template
        if isinstance(source, dict):
            # Several named templates (transformers keeps extra ones in additional_chat_templates/):
            # pick the one apply_chat_template would pick for a call with tools.
            source = source.get("tool_use") or source.get("default")
        if not isinstance(source, str) or not source:
            raise ValueError(
                "the tokenizer has no chat_template string: pass a template, or use style='zero' for base models"
            )
    else:
        raise TypeError(
            f"expected an HF tokenizer or a chat template string, got {type(tokenizer_or_template).__name__}"
        )
    mode = tool_mode(source)
    return ChatTemplate(mode=mode, template=hermes_template() if mode == "hermes" else source, tokenizer=tokenizer)


@functools.lru_cache(maxsize=32)
def tool_mode(template: str) -> ToolMode:
    """Detect whether `template` renders tools: render a probe with and without one and compare."""
    with_tool = _render_string(template, _PROBE_MESSAGES, [_PROBE_TOOL])
    without = _render_string(template, _PROBE_MESSAGES, None)
    if _PROBE_TOOL_NAME in with_tool and with_tool != without:
        return "native"
    return "hermes" if "<|im_start|>" in without else "system_text"


def _render_string(template: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> str:
    rendered, _ = render_jinja_template(
        conversations=[messages], tools=tools, chat_template=template, add_generation_prompt=True
    )
    return rendered[0]


def _tools_into_text(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For templates without tool support: tools appended to the system message, tool results as user turns."""
    out = [dict(m) for m in messages]
    if tools:
        listing = "The functions you can call are listed inside <tools></tools>:\n" + tools_block(tools)
        if out and out[0]["role"] == "system":
            out[0]["content"] = f"{out[0]['content']}\n\n{listing}"
        else:
            out.insert(0, {"role": "system", "content": listing})
    for message in out:
        if message["role"] == "tool":
            message["role"] = "user"
            message["content"] = f"<tool_response>\n{message['content']}\n</tool_response>"
    return out

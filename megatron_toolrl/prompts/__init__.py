"""Prompts: a task (plus demonstrations) -> the text the model continues.

    render.py        render(task, tokenizer_or_template, style, fmt, think, few_shot, self_exemplar)
    chat.py          chat template with tools: native, our Hermes template, or tools as system text
    instructions.py  the instruction per OutputFormat, <think> and self-exemplar texts, demo answers
    tools.py         BFCL function docs -> JSON-schema / OpenAI tools, listings
    templates/hermes_tools.jinja
"""

from megatron_toolrl.prompts.render import PromptStyle, render

__all__ = ["PromptStyle", "render"]

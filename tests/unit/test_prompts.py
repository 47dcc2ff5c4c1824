"""Prompt rendering: instruct (chat template with tools) and zero (plain text) styles."""

from __future__ import annotations

import json
import random
import statistics
from pathlib import Path

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from megatron_toolrl.data.demos import DemoPool
from megatron_toolrl.data.loaders import load_dataset
from megatron_toolrl.data.synthetic import generate_tasks
from megatron_toolrl.data.task import ToolTask
from megatron_toolrl.prompts.chat import hermes_template, resolve_template, tool_mode
from megatron_toolrl.prompts.instructions import (
    FORMAT_INSTRUCTIONS,
    NO_CALL_INSTRUCTIONS,
    SELF_EXEMPLAR_INSTRUCTION,
    THINK_INSTRUCTION,
    demo_answer,
)
from megatron_toolrl.prompts.render import chat_messages, render
from megatron_toolrl.prompts.tools import to_openai_tool
from megatron_toolrl.toolcall import OutputFormat, ParseLimits, parse_calls, render_calls

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "data"
SMOLLM2 = Path(__file__).resolve().parents[2] / "artifacts" / "smollm2-135m-instruct"

# A ChatML template that ignores tools (like SmolLM2's own), one that renders them natively
# (Qwen-like: each tool as JSON in the system turn), and a non-ChatML one that ignores them.
PLAIN_CHATML = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
NATIVE = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}"
    "{% if loop.first and tools %}\n<tools>{% for t in tools %}\n{{ t | tojson }}{% endfor %}\n</tools>{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
LLAMA_LIKE = (
    "{{ bos_token }}{% for m in messages %}"
    "<|start_header_id|>{{ m.role }}<|end_header_id|>\n\n{{ m.content }}<|eot_id|>"
    "{% endfor %}{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)
CHAT_TOKENS = ("<|", "|>", "[INST]", "<s>", "</s>", "<start_of_turn>", "<|im_start|>")
FORMATS = list(OutputFormat)
# The parser's default 10 ms budget is for training-time throughput; a loaded 2-core test box can
# exceed it on a long answer, which would make these tests flaky. Correctness is what is tested here.
LIMITS = ParseLimits(max_seconds=5.0)


@pytest.fixture(scope="module")
def tokenizer():
    """A tiny word-level tokenizer trained here, with the plain ChatML template (no model hub)."""
    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(
        ["what is the weather in Oslo", "tool call think example"],
        trainers.WordLevelTrainer(special_tokens=["[UNK]", "<|im_start|>", "<|im_end|>"]),
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        chat_template=PLAIN_CHATML,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        unk_token="[UNK]",
    )


@pytest.fixture(scope="module")
def tasks():
    return generate_tasks(120, seed=99)


@pytest.fixture(scope="module")
def pool():
    return DemoPool.from_tasks(generate_tasks(600, seed=100))


def test_tool_mode_detection():
    assert tool_mode(NATIVE) == "native"
    assert tool_mode(hermes_template()) == "native"
    assert tool_mode(PLAIN_CHATML) == "hermes"
    assert tool_mode(LLAMA_LIKE) == "system_text"


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("template", [PLAIN_CHATML, NATIVE, LLAMA_LIKE, None])
def test_format_instruction_and_tools_are_in_the_prompt(tasks, fmt, template):
    task = next(t for t in tasks if len(t.tools) >= 3)
    style = "zero" if template is None else "instruct"
    prompt = render(task, template, style, fmt, think=False)
    assert FORMAT_INSTRUCTIONS[fmt] in prompt and NO_CALL_INSTRUCTIONS[fmt] in prompt
    for other in FORMATS:
        if FORMAT_INSTRUCTIONS[other] != FORMAT_INSTRUCTIONS[fmt]:
            assert FORMAT_INSTRUCTIONS[other] not in prompt
    for tool in task.tools:
        doc = to_openai_tool(tool)
        shown = doc if template is NATIVE else doc["function"]  # NATIVE dumps the whole OpenAI tool
        assert json.dumps(shown, ensure_ascii=False) in prompt
    assert task.messages[-1]["content"] in prompt


def test_prompt_ends_where_the_model_writes(tasks, tokenizer):
    task = tasks[0]
    assert render(task, PLAIN_CHATML, "instruct", "hermes", think=True).endswith("<|im_start|>assistant\n")
    assert render(task, LLAMA_LIKE, "instruct", "hermes", think=True).endswith(
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    assert render(task, tokenizer, "instruct", "hermes", think=True).endswith("<|im_start|>assistant\n")
    zero = render(task, None, "zero", "hermes", think=True)
    assert zero.endswith(f"User: {task.messages[0]['content']}\nAssistant:")


def test_tokenizer_and_template_string_give_the_same_prompt(tasks, tokenizer, pool):
    assert resolve_template(tokenizer).mode == "hermes"  # the tiny tokenizer's template ignores tools
    for task in tasks[:10]:
        demos = pool.select(task, 2, random.Random(0))
        assert render(task, tokenizer, "instruct", "json_list", True, demos) == render(
            task, PLAIN_CHATML, "instruct", "json_list", True, demos
        )


def test_several_named_templates_use_the_default(tasks, tokenizer):
    tok = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer.backend_tokenizer,
        chat_template={"default": NATIVE, "original": PLAIN_CHATML},
        eos_token="<|im_end|>",
        unk_token="[UNK]",
    )
    assert resolve_template(tok).mode == "native"
    assert render(tasks[0], tok, "instruct", "hermes", False) == render(tasks[0], NATIVE, "instruct", "hermes", False)


def test_zero_style_has_no_chat_tokens(tasks, pool):
    for task in tasks[:40]:
        for fmt in FORMATS:
            prompt = render(
                task, None, "zero", fmt, think=True, few_shot=pool.select(task, 2, random.Random(1)), self_exemplar=True
            )
            assert not any(token in prompt for token in CHAT_TOKENS), prompt[:200]
            assert prompt.count("\nAssistant:") == 3 and prompt.endswith("Assistant:")


@pytest.mark.parametrize("style", ["instruct", "zero"])
def test_think_and_self_exemplar_switches(tasks, style):
    task = tasks[1]
    template = PLAIN_CHATML if style == "instruct" else None
    plain = render(task, template, style, "hermes", think=False)
    think = render(task, template, style, "hermes", think=True)
    both = render(task, template, style, "hermes", think=True, self_exemplar=True)
    assert THINK_INSTRUCTION not in plain and SELF_EXEMPLAR_INSTRUCTION not in plain
    assert THINK_INSTRUCTION in think and SELF_EXEMPLAR_INSTRUCTION not in think
    assert THINK_INSTRUCTION in both and SELF_EXEMPLAR_INSTRUCTION in both
    with pytest.raises(ValueError, match="think"):
        render(task, template, style, "hermes", think=False, self_exemplar=True)


@pytest.mark.parametrize("fmt", FORMATS)
def test_few_shot_turns_are_present_and_never_hold_the_task_answer(tasks, pool, fmt):
    for task in tasks[:60]:
        demos = pool.select(task, 2, random.Random(task.id))
        prompt = render(task, PLAIN_CHATML, "instruct", fmt, think=True, few_shot=demos)
        position = 0
        for demo in demos:
            answer = demo_answer(demo, fmt, think=True, self_exemplar=False)
            turn = "<|im_start|>user\n"
            found = prompt.find(answer, position)
            assert found > position and prompt.rfind(turn, 0, found) >= 0
            assert demo.question in prompt[:found]
            position = found
        # Demonstrations come before the request, and none of them writes the task's own answer.
        assert prompt.rfind(task.messages[-1]["content"]) > position
        if task.ground_truth:
            assert render_calls(task.reference_answer(), fmt) not in prompt


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("self_exemplar", [False, True])
def test_demo_answers_parse_back_to_their_calls(tasks, pool, fmt, self_exemplar):
    for task in tasks[:30]:
        demos = pool.select(task, 2, random.Random(2))
        messages = chat_messages(task, "SYSTEM", demos, fmt, True, self_exemplar)
        answers = [m["content"] for m in messages if m["role"] == "assistant"]
        assert len(answers) == len(demos)
        for demo, text in zip(demos, answers, strict=True):
            parsed = parse_calls(text, fmt, LIMITS)
            assert parsed.ok and parsed.has_think and parsed.calls == demo.calls
            assert ("<example>" in parsed.think) == self_exemplar
            if self_exemplar:
                example = parsed.think.split("<example>", 1)[1].split("</example>", 1)[0]
                (call,) = parse_calls(example, fmt, LIMITS).calls
                tool = next(t for t in demo.task.tools if t["name"] == call.name)
                assert set(call.arguments) == set(tool["parameters"]["required"])
                analysis = parsed.think.split("</example>", 1)[1]
                assert len(analysis.split()) >= 5


def test_demo_tools_missing_from_the_task_are_listed(tasks, pool):
    task = next(t for t in tasks if t.category == "single")
    same = next(d for d in pool.demos if d.task.tool_names == task.tool_names and d.task.id != task.id)
    other = next(d for d in pool.demos if not set(d.task.tool_names) & set(task.tool_names))
    prompt = render(task, PLAIN_CHATML, "instruct", "hermes", think=False, few_shot=[same, other])
    listing = "(Functions for this example: "
    assert prompt.count(listing) == 1
    after = prompt.split(listing, 1)[1]
    assert after.index(other.question) > 0
    assert all(f"{name}(" in after.split(other.question)[0] for name in other.task.tool_names)


def test_history_calls_and_tool_results_are_rendered():
    tasks, _ = load_dataset("toolace", FIXTURES / "toolace_good.json")
    follow = next(t for t in tasks if t.id == "toolace-0-5")
    earlier = [m for m in follow.messages if m.get("tool_calls")][0]
    tool_output = next(m["content"] for m in follow.messages if m["role"] == "tool")
    for fmt in ("hermes", "json_list"):
        from megatron_toolrl.data.task import ToolCall

        written = render_calls([ToolCall(c["name"], c["arguments"]) for c in earlier["tool_calls"]], fmt)
        hermes = render(follow, PLAIN_CHATML, "instruct", fmt, think=False)
        assert (
            written in hermes
            and f"<|im_start|>user\n<tool_response>\n{tool_output}\n</tool_response><|im_end|>" in hermes
        )
        text_mode = render(follow, LLAMA_LIKE, "instruct", fmt, think=False)
        assert (
            written in text_mode
            and f"<|start_header_id|>user<|end_header_id|>\n\n<tool_response>\n{tool_output}\n</tool_response>"
            in text_mode
        )
        zero = render(follow, None, "zero", fmt, think=False)
        assert f"Assistant: {written}" in zero and f"Tool: {tool_output}" in zero


def test_task_system_message_follows_the_instruction():
    task = ToolTask(
        "s",
        [{"role": "system", "content": "Answer as a pirate."}, {"role": "user", "content": "Weather in Oslo?"}],
        [{"name": "w", "description": "", "parameters": {"type": "dict", "properties": {}, "required": []}}],
        [],
        "irrelevance",
    )
    prompt = render(task, PLAIN_CHATML, "instruct", "hermes", think=False)
    assert prompt.count("<|im_start|>system") == 1
    assert (
        prompt.index(FORMAT_INSTRUCTIONS[OutputFormat.HERMES])
        < prompt.index("Answer as a pirate.")
        < prompt.index("<tools>")
    )
    zero = render(task, None, "zero", "hermes", think=False)
    assert "Answer as a pirate." in zero and "System:" not in zero


def test_bad_arguments():
    task = generate_tasks(1, seed=0)[0]
    with pytest.raises(ValueError):
        render(task, None, "instruct", "hermes", think=False)
    with pytest.raises(ValueError):
        render(task, PLAIN_CHATML, "chat", "hermes", think=False)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        render(task, PLAIN_CHATML, "instruct", "xml", think=False)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        render(task, 42, "instruct", "hermes", think=False)  # type: ignore[arg-type]


@pytest.mark.skipif(not (SMOLLM2 / "tokenizer.json").exists(), reason="SmolLM2 not converted yet (make model)")
def test_smollm2_prompts_fit_the_budget():
    tok = PreTrainedTokenizerFast.from_pretrained(SMOLLM2)
    templates = tok.chat_template if isinstance(tok.chat_template, dict) else {"default": tok.chat_template}
    if "original" in templates:
        assert tool_mode(templates["original"]) == "hermes"  # SmolLM2's own template ignores tools
    lengths = sorted(
        len(tok(render(t, tok, "instruct", "hermes", think=True))["input_ids"]) for t in generate_tasks(200, seed=5)
    )
    # ~400-700 tokens for a 135M model: the median well inside, 90% under 800.
    assert statistics.median(lengths) < 600 and lengths[int(0.9 * len(lengths))] < 800


def test_hermes_template_renders_structured_tool_calls():
    """Callers that pass OpenAI-style tool_calls (not our text form) get Hermes blocks too."""
    messages = [
        {"role": "user", "content": "Weather in Oslo and Rome?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"type": "function", "function": {"name": "w", "arguments": {"city": "Oslo"}}},
                {"name": "w", "arguments": {"city": "Rome"}},
            ],
        },
        {"role": "tool", "content": "4C"},
        {"role": "tool", "content": "18C"},
    ]
    tool = {"name": "w", "description": "", "parameters": {"type": "dict", "properties": {"city": {"type": "string"}}}}
    out = resolve_template(hermes_template()).render(messages, [tool])
    assert out == (
        "<|im_start|>system\n# Tools\n\nThe functions you can call are listed inside <tools></tools>:\n<tools>\n"
        + json.dumps(to_openai_tool(tool)["function"], ensure_ascii=False)
        + "\n</tools><|im_end|>\n<|im_start|>user\nWeather in Oslo and Rome?<|im_end|>\n<|im_start|>assistant\n"
        '<tool_call>\n{"name": "w", "arguments": {"city": "Oslo"}}\n</tool_call>\n'
        '<tool_call>\n{"name": "w", "arguments": {"city": "Rome"}}\n</tool_call><|im_end|>\n'
        "<|im_start|>user\n<tool_response>\n4C\n</tool_response>\n<tool_response>\n18C\n</tool_response><|im_end|>\n"
        "<|im_start|>assistant\n"
    )

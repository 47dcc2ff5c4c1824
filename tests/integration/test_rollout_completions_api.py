"""Parsing of vLLM /v1/completions bodies: every sample exactly once, malformed bodies rejected."""

from __future__ import annotations

import copy

import pytest

from megatron_toolrl.rollout.completions_api import (
    MalformedResponse,
    completion_request,
    parse_completions,
    parse_prompt_logprobs,
)
from megatron_toolrl.rollout.types import SamplingSettings

S = SamplingSettings(n=2, max_tokens=3, seed=10, stop=("</tool_call>",))


def _choice(index: int, ids: list[int]) -> dict:
    return {
        "index": index, "text": f"t{index}", "token_ids": ids, "prompt_token_ids": [5, 6],
        "finish_reason": "length", "stop_reason": None,
        "logprobs": {"token_logprobs": [-0.5] * len(ids), "tokens": ["x"] * len(ids)},
    }


BODY = {"choices": [_choice(1, [7, 8, 9]), _choice(0, [4, 3, 2])]}


def test_request_carries_settings_and_per_prompt_seed():
    body = completion_request([5, 6], prompt_index=3, s=S)
    assert body["seed"] == 13 and body["n"] == 2 and body["stop"] == ["</tool_call>"]
    assert body["logprobs"] == 0 and body["return_token_ids"] is True and body["top_k"] == 0


def test_choices_are_ordered_by_sample_index():
    out = parse_completions(BODY, prompt_index=4, s=S)
    assert [(c.prompt_index, c.sample_index, c.token_ids) for c in out] == [(4, 0, [4, 3, 2]), (4, 1, [7, 8, 9])]
    assert out[0].prompt_token_ids == [5, 6] and out[0].logprobs == [-0.5] * 3


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda b: b["choices"].pop(), "indices"),
        (lambda b: b["choices"].append(_choice(1, [1])), "indices"),
        (lambda b: b["choices"][0]["logprobs"]["token_logprobs"].pop(), "one float per token"),
        (lambda b: b["choices"][0].update(finish_reason="abort"), "unfinished"),
        (lambda b: b["choices"][0].update(token_ids="7 8 9"), "token_ids"),
        (lambda b: b.pop("choices"), "no 'choices'"),
    ],
)
def test_malformed_bodies_raise(edit, message):
    body = copy.deepcopy(BODY)
    edit(body)
    with pytest.raises(MalformedResponse, match=message):
        parse_completions(body, prompt_index=0, s=S)


def test_prompt_logprobs_pick_the_actual_token():
    rows = [None, {"8": {"logprob": -1.0}, "3": {"logprob": -0.1}}, {"9": {"logprob": -2.0}}]
    assert parse_prompt_logprobs({"choices": [{"prompt_logprobs": rows}]}, [7, 8, 9]) == [-1.0, -2.0]
    with pytest.raises(MalformedResponse, match="lacks token 9"):
        parse_prompt_logprobs({"choices": [{"prompt_logprobs": rows[:2] + [{"4": {"logprob": -2.0}}]}]}, [7, 8, 9])

"""Requests to and responses from a vLLM server's /v1/completions route (vLLM 0.32 fields).

Sampled token ids come back with `return_token_ids=true` (choice.token_ids, choice.prompt_token_ids);
`logprobs=0` returns the sampled token's logprob only (choice.logprobs.token_logprobs);
`prompt_logprobs=0` returns, per prompt position, a {token_id: {"logprob": ...}} dict holding the
actual prompt token. Responses are checked field by field: a malformed one raises
`MalformedResponse` rather than producing a wrong completion.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from megatron_toolrl.rollout.types import Completion, SamplingSettings

SERVED_MODEL_NAME = "policy"


class MalformedResponse(RuntimeError):
    """A server answered 200 with a body that does not have the fields we asked for."""


def completion_request(prompt: str | list[int], prompt_index: int, s: SamplingSettings) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": SERVED_MODEL_NAME,
        "prompt": prompt,
        "n": s.n,
        "temperature": s.temperature,
        "top_p": s.top_p,
        "top_k": s.top_k or 0,
        "max_tokens": s.max_tokens,
        "stop": list(s.stop),
        "return_token_ids": True,
    }
    if s.logprobs:
        body["logprobs"] = 0
    seed = s.seed_for(prompt_index)
    if seed is not None:
        body["seed"] = seed
    return body


def prompt_logprobs_request(token_ids: list[int]) -> dict[str, Any]:
    return {
        "model": SERVED_MODEL_NAME,
        "prompt": token_ids,
        "max_tokens": 1,
        "temperature": 0.0,
        "prompt_logprobs": 0,
        "return_token_ids": True,
    }


def _int_list(value: Any, what: str) -> list[int]:
    if not isinstance(value, list) or not all(isinstance(t, int) and not isinstance(t, bool) for t in value):
        raise MalformedResponse(f"{what}: expected a list of token ids, got {type(value).__name__}")
    return value


def parse_completions(body: Any, prompt_index: int, s: SamplingSettings) -> list[Completion]:
    """The n completions of one prompt, ordered by sample index; every sample exactly once."""
    if not isinstance(body, dict) or not isinstance(body.get("choices"), list):
        raise MalformedResponse(f"prompt {prompt_index}: response has no 'choices' list")
    choices = body["choices"]
    indices = sorted(c.get("index") for c in choices if isinstance(c, dict) and isinstance(c.get("index"), int))
    if indices != list(range(s.n)):
        raise MalformedResponse(f"prompt {prompt_index}: choices carry indices {indices}, expected 0..{s.n - 1}")
    out = []
    for c in sorted(choices, key=lambda c: c["index"]):
        where = f"prompt {prompt_index} sample {c['index']}"
        token_ids = _int_list(c.get("token_ids"), f"{where}: token_ids")
        prompt_ids = _int_list(c.get("prompt_token_ids"), f"{where}: prompt_token_ids")
        if c.get("finish_reason") not in ("stop", "length"):
            raise MalformedResponse(f"{where}: unfinished completion (finish_reason {c.get('finish_reason')!r})")
        text = c.get("text")
        if not isinstance(text, str):
            raise MalformedResponse(f"{where}: text is not a string")
        logprobs = None
        if s.logprobs:
            lp = c.get("logprobs")
            values = lp.get("token_logprobs") if isinstance(lp, dict) else None
            if not isinstance(values, list) or len(values) != len(token_ids) or not all(isinstance(v, (int, float)) for v in values):
                raise MalformedResponse(f"{where}: token_logprobs missing or not one float per token")
            logprobs = [float(v) for v in values]
        stop_reason = c.get("stop_reason")
        out.append(
            Completion(
                prompt_index=prompt_index,
                sample_index=c["index"],
                text=text,
                token_ids=token_ids,
                logprobs=logprobs,
                finish_reason=c["finish_reason"],
                prompt_token_ids=prompt_ids,
                stop_reason=stop_reason if isinstance(stop_reason, (int, str)) else None,
            )
        )
    return out


def parse_prompt_logprobs(body: Any, token_ids: Sequence[int]) -> list[float]:
    """log p(t[j] | t[:j]) for j = 1 .. L-1 from a prompt_logprobs=0 response."""
    try:
        rows = body["choices"][0]["prompt_logprobs"]
    except (KeyError, IndexError, TypeError) as err:
        raise MalformedResponse(f"no prompt_logprobs in response: {err!r}") from None
    if not isinstance(rows, list) or len(rows) != len(token_ids):
        raise MalformedResponse(f"prompt_logprobs has {len(rows) if isinstance(rows, list) else '?'} rows for {len(token_ids)} tokens")
    out = []
    for j in range(1, len(token_ids)):
        entry = rows[j].get(str(token_ids[j])) if isinstance(rows[j], dict) else None
        if not isinstance(entry, dict) or not isinstance(entry.get("logprob"), (int, float)):
            raise MalformedResponse(f"prompt_logprobs row {j} lacks token {token_ids[j]}")
        out.append(float(entry["logprob"]))
    return out

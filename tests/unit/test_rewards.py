"""Reward terms on small cases with hand-computed values: format, ToolRL partial, Tool-N1 binary,
strict AST, the self-exemplar bonus, irrelevance and the think requirement."""

from __future__ import annotations

import pytest

from megatron_toolrl.data.task import GroundTruthCall, ToolCall, ToolTask
from megatron_toolrl.rewards import RewardConfig, RewardFn
from megatron_toolrl.rewards.config import ExemplarConfig, Ramp, TermConfig
from megatron_toolrl.rewards.matching import calls_match_exactly, multiset_jaccard, value_accepted
from megatron_toolrl.rewards.partial import partial_score
from megatron_toolrl.toolcall import check, parse_calls, render_calls
from megatron_toolrl.toolcall.types import OutputFormat, ParseLimits

F = OutputFormat
# the parser's wall-clock budget (10 ms) is meant for training; a loaded test machine must not flip results
LIMITS = ParseLimits(max_seconds=10.0)
TOOLS = [
    {
        "name": "get_weather",
        "description": "Weather forecast for a city.",
        "parameters": {
            "type": "dict",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer"},
            },
            "required": ["city"],
        },
    },
    {
        "name": "get_time",
        "description": "Current time in a time zone.",
        "parameters": {"type": "dict", "properties": {"tz": {"type": "string"}}, "required": ["tz"]},
    },
]
WEATHER_GT = GroundTruthCall("get_weather", {"city": ["Paris"], "unit": ["celsius", ""]})


def task(gt: list[GroundTruthCall], category: str = "multiple") -> ToolTask:
    return ToolTask(
        id="t",
        messages=[{"role": "user", "content": "q"}],
        tools=TOOLS,
        ground_truth=gt,
        category=category,  # type: ignore[arg-type]
    )


def answer(calls: list[ToolCall], fmt: OutputFormat, think: str = "Let me call the tool.") -> str:
    body = render_calls(calls, fmt)
    return f"<think>{think}</think>\n{body}" if think is not None else body


def only(term: str, low: float = 0.0, high: float = 1.0, require_think: bool = True) -> RewardFn:
    """A reward made of one term, so the reward equals that term's contribution."""
    terms = {name: TermConfig(enabled=False) for name in ("format", "partial", "binary", "ast")}
    terms[term] = TermConfig(enabled=True, low=Ramp(low), high=Ramp(high))
    return RewardFn(RewardConfig(**terms, require_think=require_think), LIMITS)


def reward(fn: RewardFn, t: ToolTask, text: str, fmt: OutputFormat = F.HERMES) -> float:
    return fn.compute_rewards([t], [text], step=0, fmt=fmt).rewards[0]


# ---------------------------------------------------------------------- matching primitives


def test_value_acceptance() -> None:
    assert value_accepted(3, [3.0]) and value_accepted(3.0, [3])
    assert not value_accepted(True, [1]) and not value_accepted(1, [True])
    assert not value_accepted("Paris", ["paris"])  # exact strings (BFCL normalisation is the AST term's)
    assert value_accepted([1, 2], [[1, 2]]) and not value_accepted([2, 1], [[1, 2]])
    nested = [{"lat": [48.8], "label": ["home", ""]}]
    assert value_accepted({"lat": 48.8}, nested)  # optional nested key left out
    assert value_accepted({"lat": 48.8, "label": "home"}, nested)
    assert not value_accepted({"lat": 48.8, "extra": 1}, nested)
    assert not value_accepted({"label": "home"}, nested)


def test_multiset_jaccard() -> None:
    assert multiset_jaccard([], []) == 1.0
    assert multiset_jaccard(["a"], []) == 0.0
    # {a, a, b} vs {a, b, b}: intersection {a, b} = 2, union 3 + 3 - 2 = 4
    assert multiset_jaccard(["a", "a", "b"], ["a", "b", "b"]) == pytest.approx(0.5)


def test_exact_match_finds_the_pairing_a_greedy_pass_misses() -> None:
    # g1 accepts Paris or Rome, g2 only Paris. Answer order [Paris, Rome]: greedy g1 -> Paris leaves
    # g2 with Rome; the right pairing is g1 -> Rome, g2 -> Paris.
    gt = [
        GroundTruthCall("get_weather", {"city": ["Paris", "Rome"]}),
        GroundTruthCall("get_weather", {"city": ["Paris"]}),
    ]
    calls = [ToolCall("get_weather", {"city": "Paris"}), ToolCall("get_weather", {"city": "Rome"})]
    assert calls_match_exactly(gt, calls)
    assert partial_score(gt, calls, True) == 1.0
    assert not calls_match_exactly(gt, calls[1:] + calls[1:])  # Rome twice: g2 has no partner


# ---------------------------------------------------------------------- ToolRL partial


def test_partial_worked_example() -> None:
    # GT get_weather(city=["Paris"], unit=["celsius", ""]); answer get_weather(city="Paris",
    # unit="fahrenheit", days=3).
    #   names: J([get_weather], [get_weather]) = 1
    #   params: J({city, unit}, {city, unit, days}) = 2/3; right values: city only -> 1
    #   S = 1 + 2/3 + 1 = 8/3;  S_max = 1 + (1 + 2) = 4;  s = 2/3
    #   reward in [-3, 3]: -3 + 6 * 2/3 = 1.0
    call = ToolCall("get_weather", {"city": "Paris", "unit": "fahrenheit", "days": 3})
    assert partial_score([WEATHER_GT], [call], True) == pytest.approx(2 / 3)
    fn = only("partial", -3.0, 3.0)
    assert reward(fn, task([WEATHER_GT]), answer([call], F.HERMES)) == pytest.approx(1.0)


def test_partial_parallel_case_with_greedy_pairing() -> None:
    # GT: get_weather(city=Paris), get_weather(city=Rome). Answer: get_weather(city=Rome), get_time(tz=UTC).
    #   names: J([gw, gw], [gw, gt]) = 1 / (2 + 2 - 1) = 1/3
    #   g1 (Paris) takes the only get_weather call (Rome): J({city},{city}) = 1, values 0 -> 1
    #   g2 (Rome): no unused get_weather call left -> 0
    #   S = 1/3 + 1 = 4/3;  S_max = 1 + 2 + 2 = 5;  s = 4/15;  reward -3 + 6 * 4/15 = -1.4
    gt = [GroundTruthCall("get_weather", {"city": ["Paris"]}), GroundTruthCall("get_weather", {"city": ["Rome"]})]
    calls = [ToolCall("get_weather", {"city": "Rome"}), ToolCall("get_time", {"tz": "UTC"})]
    assert partial_score(gt, calls, True) == pytest.approx(4 / 15)
    fn = only("partial", -3.0, 3.0)
    assert reward(fn, task(gt, "parallel"), answer(calls, F.JSON_LIST), F.JSON_LIST) == pytest.approx(-1.4)


def test_partial_optional_argument_left_out_counts_as_right() -> None:
    # GT keys {city, unit(optional)}; answer gives city only. The omitted optional unit counts as named
    # and right: S = 1 + 1 + 2 = S_max = 4 -> exact.
    assert partial_score([WEATHER_GT], [ToolCall("get_weather", {"city": "Paris"})], True) == 1.0
    # wrong city, optional left out: S = 1 + 1 + 1 = 3 -> 3/4
    assert partial_score([WEATHER_GT], [ToolCall("get_weather", {"city": "Rome"})], True) == pytest.approx(0.75)


@pytest.mark.parametrize("fmt", list(F))
def test_partial_extremes(fmt: OutputFormat) -> None:
    fn = only("partial", -3.0, 3.0)
    exact = answer([ToolCall("get_weather", {"unit": "celsius", "city": "Paris"})], fmt)
    assert reward(fn, task([WEATHER_GT]), exact, fmt) == 3.0
    truncated = "[get_weather(city=" if fmt is F.PYTHON else '<tool_call>{"name": "get_weather", '
    broken = "<think>x</think>\n" + truncated
    assert reward(fn, task([WEATHER_GT]), broken, fmt) == -3.0
    wrong_tool = answer([ToolCall("get_time", {"tz": "UTC"})], fmt)
    # names J = 0, no same-name call -> S = 0 -> min
    assert reward(fn, task([WEATHER_GT]), wrong_tool, fmt) == -3.0


# ---------------------------------------------------------------------- irrelevance


@pytest.mark.parametrize("fmt", list(F))
def test_irrelevance_no_call_is_max_any_call_is_min(fmt: OutputFormat) -> None:
    irr = task([], "irrelevance")
    plain = "<think>None of the tools can book flights.</think>\nSorry, I cannot book flights with these tools."
    call = answer([ToolCall("get_time", {"tz": "UTC"})], fmt)
    for term, lo, hi in (("partial", -3.0, 3.0), ("binary", 0.0, 1.0), ("format", 0.0, 1.0), ("ast", 0.0, 1.0)):
        fn = only(term, lo, hi)
        assert reward(fn, irr, plain, fmt) == hi, term
        assert reward(fn, irr, call, fmt) == lo, term


def test_irrelevance_malformed_call_attempt() -> None:
    irr = task([], "irrelevance")
    broken = '<think>x</think>\n<tool_call>{"name": "get_time", "arguments": {'
    assert reward(only("partial", -3.0, 3.0), irr, broken) == -3.0
    assert reward(only("format"), irr, broken) == 0.0
    assert reward(only("binary"), irr, broken) == 0.0
    # the AST term follows BFCL: an answer that does not decode makes no call -> correct
    assert reward(only("ast"), irr, broken) == 1.0
    py_broken = "<think>x</think>\n[get_time(tz="
    assert reward(only("partial", -3.0, 3.0), irr, py_broken, F.PYTHON) == -3.0
    assert reward(only("format"), irr, "<think>x</think>\n", F.HERMES) == 0.0  # no answer at all


# ---------------------------------------------------------------------- format


@pytest.mark.parametrize("fmt", list(F))
def test_format_well_formed_and_think_requirement(fmt: OutputFormat) -> None:
    t = task([WEATHER_GT])
    calls = [ToolCall("get_weather", {"city": "Rome"})]  # wrong value: format does not care
    fn = only("format")
    assert reward(fn, t, answer(calls, fmt), fmt) == 1.0
    no_think = render_calls(calls, fmt)
    assert reward(fn, t, no_think, fmt) == 0.0
    assert reward(only("format", require_think=False), t, no_think, fmt) == 1.0
    assert reward(fn, t, render_calls(calls, fmt) + "\n<think>late</think>", fmt) == 0.0  # think not first
    assert reward(fn, t, "<think>a</think><think>b</think>\n" + render_calls(calls, fmt), fmt) == 0.0
    assert reward(fn, t, answer(calls, fmt) + "\nHope this helps!", fmt) == 0.0  # text after the calls
    assert reward(fn, t, "<think>I will not call.</think>\nThe weather is nice.", fmt) == 0.0  # no call


def test_format_block_counts() -> None:
    t = task([WEATHER_GT, GroundTruthCall("get_time", {"tz": ["UTC"]})], "parallel_multiple")
    calls = [ToolCall("get_weather", {"city": "Paris"}), ToolCall("get_time", {"tz": "UTC"})]
    fn = only("format")
    assert reward(fn, t, answer(calls, F.HERMES)) == 1.0  # one block per call is hermes
    blocks = [render_calls(calls[:1], F.JSON_LINES), render_calls(calls[1:], F.JSON_LINES)]
    two_lines_blocks = "<think>x</think>\n" + "\n".join(blocks)
    assert reward(fn, t, two_lines_blocks, F.JSON_LINES) == 0.0
    assert reward(fn, t, answer(calls, F.JSON_LINES), F.JSON_LINES) == 1.0


# ---------------------------------------------------------------------- Tool-N1 binary


def test_binary() -> None:
    gt = [GroundTruthCall("get_weather", {"city": ["Paris"]}), GroundTruthCall("get_time", {"tz": ["UTC"]})]
    t = task(gt, "parallel_multiple")
    fn = only("binary")
    reordered = [ToolCall("get_time", {"tz": "UTC"}), ToolCall("get_weather", {"city": "Paris"})]
    assert reward(fn, t, answer(reordered, F.JSON_LIST), F.JSON_LIST) == 1.0  # call order does not matter
    assert reward(fn, t, render_calls(reordered, F.JSON_LIST), F.JSON_LIST) == 0.0  # no think
    assert reward(only("binary", require_think=False), t, render_calls(reordered, F.JSON_LIST), F.JSON_LIST) == 1.0
    assert reward(fn, t, answer(reordered[:1], F.JSON_LIST), F.JSON_LIST) == 0.0  # a call missing
    assert reward(fn, t, answer(reordered + reordered[:1], F.JSON_LIST), F.JSON_LIST) == 0.0  # an extra call
    wrong = [ToolCall("get_time", {"tz": "CET"}), ToolCall("get_weather", {"city": "Paris"})]
    assert reward(fn, t, answer(wrong, F.JSON_LIST), F.JSON_LIST) == 0.0
    # accepted-value semantics: optional unit may be omitted or given an accepted value
    single = task([WEATHER_GT])
    assert reward(fn, single, answer([ToolCall("get_weather", {"city": "Paris"})], F.HERMES)) == 1.0
    assert reward(fn, single, answer([ToolCall("get_weather", {"city": "Paris", "unit": "celsius"})], F.HERMES)) == 1.0
    assert reward(fn, single, answer([ToolCall("get_weather", {"city": "Paris", "days": 2})], F.HERMES)) == 0.0


# ---------------------------------------------------------------------- strict AST


def test_ast_term_equals_the_checker() -> None:
    gt = [GroundTruthCall("get_weather", {"city": ["Paris"], "days": [3, ""]})]
    t = task(gt, "multiple")
    texts = [
        answer([ToolCall("get_weather", {"city": "Paris"})], F.PYTHON),
        answer([ToolCall("get_weather", {"city": "paris"})], F.PYTHON),  # BFCL normalises strings
        answer([ToolCall("get_weather", {"city": "Paris", "days": "3"})], F.PYTHON),  # type error
        answer([ToolCall("get_weather", {"city": "Paris", "days": 3})], F.PYTHON),
        answer([ToolCall("get_time", {"tz": "UTC"})], F.PYTHON),
        "<think>x</think>\n[get_weather(city='Paris'",
        "[get_weather(city='Paris')]",  # no think: the AST term does not ask for one
    ]
    fn = only("ast")
    batch = fn.compute_rewards([t] * len(texts), texts, 0, F.PYTHON)
    expected = [1.0 if check(TOOLS, x, gt, "multiple", F.PYTHON, LIMITS).valid else 0.0 for x in texts]
    assert batch.rewards == expected
    assert expected == [1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0]  # pins the cases above to what they test
    assert batch.correct == [e == 1.0 for e in expected]


# ---------------------------------------------------------------------- self-exemplar bonus


def exemplar_fn(amount: float = 0.01) -> RewardFn:
    return RewardFn(
        RewardConfig(
            format=TermConfig(enabled=False),
            partial=TermConfig(enabled=False),
            binary=TermConfig(enabled=True),
            exemplar=ExemplarConfig(enabled=True, amount=amount),
        ),
        LIMITS,
    )


FINAL = render_calls([ToolCall("get_weather", {"city": "Paris"})], F.HERMES)


@pytest.mark.parametrize(
    "example",
    [
        "get_weather(city='Berlin', days=2)",  # python format, task format is hermes
        '{"name": "get_time", "arguments": {"tz": "UTC"}}',  # bare JSON
        render_calls([ToolCall("get_weather", {"city": "Oslo", "unit": "celsius"})], F.HERMES),
    ],
)
def test_exemplar_bonus_positive(example: str) -> None:
    think = f"A similar request: <example>{example}</example> which names the city; here the user asks about Paris."
    batch = exemplar_fn().compute_rewards([task([WEATHER_GT])], [f"<think>{think}</think>\n{FINAL}"], 0, F.HERMES)
    assert batch.scores["exemplar"] == [1.0]
    assert batch.components["exemplar"] == [0.01]
    assert batch.rewards == [pytest.approx(1.01)]


@pytest.mark.parametrize(
    "think",
    [
        # not a valid call of the task's tools
        "For example <example>book_flight(to='Paris')</example> is how one would book a flight here.",
        "For example <example>get_weather(days=2)</example> misses the city the user gave us here.",
        "For example <example>get_weather(city=5)</example> passes a number where a name is expected.",
        "For example <example>get_weather(city='Oslo', unit='kelvin')</example> uses an unknown unit here.",
        "For example <example>get_weather(city='Oslo', country='NO')</example> adds an unknown argument here.",
        "For example <example>the weather tool with a city</example> describes it without writing a call.",
        # no analysis beyond the example
        "<example>get_weather(city='Berlin')</example>",
        "<example>get_weather(city='Berlin')</example> ok",
        # no example block
        "A similar call would be get_weather(city='Berlin') and it shows the city argument is needed.",
    ],
)
def test_exemplar_bonus_negative(think: str) -> None:
    batch = exemplar_fn().compute_rewards([task([WEATHER_GT])], [f"<think>{think}</think>\n{FINAL}"], 0, F.HERMES)
    assert batch.scores["exemplar"] == [0.0]
    assert batch.rewards == [1.0]


def test_exemplar_outside_think_or_without_think_earns_nothing() -> None:
    text = f"<example>get_weather(city='Berlin')</example> shows the city argument matters a lot here.\n{FINAL}"
    fn = exemplar_fn()
    assert fn.compute_rewards([task([WEATHER_GT])], [text], 0, F.HERMES).scores["exemplar"] == [0.0]


def test_exemplar_amount_is_configurable() -> None:
    think = "See <example>get_time(tz='UTC')</example> which passes the zone as a string argument."
    batch = exemplar_fn(0.5).compute_rewards([task([WEATHER_GT])], [f"<think>{think}</think>\n{FINAL}"], 0, F.HERMES)
    assert batch.rewards == [pytest.approx(1.5)]


def test_parse_is_returned_not_redone() -> None:
    text = answer([ToolCall("get_weather", {"city": "Paris"})], F.HERMES)
    batch = only("partial").compute_rewards([task([WEATHER_GT])], [text], 0, F.HERMES)
    assert batch.parses[0] == parse_calls(text, F.HERMES, LIMITS)


# ---------------------------------------------------------------------- synthetic tasks, all terms


@pytest.mark.parametrize("fmt", list(F))
def test_reference_answers_of_synthetic_tasks_get_full_marks(fmt: OutputFormat) -> None:
    from megatron_toolrl.data.synthetic import generate_tasks

    tasks = generate_tasks(60, seed=7)
    texts = [
        answer(t.reference_answer(), fmt) if t.ground_truth else "<think>No tool fits.</think>\nI cannot do that."
        for t in tasks
    ]
    batch = RewardFn(RewardConfig(), LIMITS).compute_rewards(tasks, texts, 0, fmt)
    for name in ("format", "partial", "binary", "ast"):
        assert batch.scores[name] == [1.0] * len(tasks), name
    # change one argument value of the first call: strict terms drop to 0, partial credit stays high,
    # and the AST term still agrees with the checker
    broken_tasks = [t for t in tasks if t.ground_truth and t.reference_answer()[0].arguments]
    broken = []
    for t in broken_tasks:
        calls = t.reference_answer()
        key = next(iter(calls[0].arguments))
        calls[0] = ToolCall(calls[0].name, {**calls[0].arguments, key: ["not", "this"]})
        broken.append(answer(calls, fmt))
    worse = RewardFn(RewardConfig(), LIMITS).compute_rewards(broken_tasks, broken, 0, fmt)
    assert worse.scores["binary"] == [0.0] * len(broken_tasks)
    checked = [check(t.tools, x, t.ground_truth, t.category, fmt, LIMITS) for t, x in zip(broken_tasks, broken)]
    assert worse.scores["ast"] == [1.0 if c.valid else 0.0 for c in checked]
    assert sum(worse.scores["ast"]) == 0
    assert all(0.5 < s < 1.0 for s in worse.scores["partial"])

"""Dataset loaders (ToolACE, xLAM, Hammer, API-Bank) on the fixture files in tests/fixtures/data.

Expected tasks are written out by hand from the fixture records (what each record says), not
produced by the code under test.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from megatron_toolrl.data.apibank import load_apibank
from megatron_toolrl.data.loaders import load_dataset
from megatron_toolrl.data.pycall import CallSyntaxError, parse_call_list
from megatron_toolrl.data.records import iter_records
from megatron_toolrl.data.task import ToolCall
from megatron_toolrl.data.toolace import load_toolace
from megatron_toolrl.data.xlam import load_hammer, load_xlam
from megatron_toolrl.errors import DataError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "data"


def _gt(task):
    return [gt.to_bfcl() for gt in task.ground_truth]


def test_toolace_one_task_per_answer_turn():
    tasks, report = load_toolace(FIXTURES / "toolace_good.json")
    assert (report.read, report.loaded, report.skipped) == (2, 4, 0)
    by_id = {t.id: t for t in tasks}
    assert list(by_id) == ["toolace-0-1", "toolace-0-5", "toolace-1-1", "toolace-1-3"]

    first = by_id["toolace-0-1"]
    assert first.category == "parallel_multiple"
    assert first.tool_names == ["Market Trends API", "Get Stock Quote"]
    assert first.messages == [
        {"role": "user", "content": "Show me the market movers in the US and the quote for AAPL."}
    ]
    assert _gt(first) == [
        {"Market Trends API": {"trend_type": ["MARKET_MOVERS"], "country": ["us"]}},
        {"Get Stock Quote": {"symbol": ["AAPL"]}},
    ]

    # The follow-up keeps the dialogue: the earlier calls as tool_calls, the tool output, the summary.
    follow = by_id["toolace-0-5"]
    assert follow.category == "multiple"
    assert [m["role"] for m in follow.messages] == ["user", "assistant", "tool", "assistant", "user"]
    assert follow.messages[1]["tool_calls"] == [
        {"name": "Market Trends API", "arguments": {"trend_type": "MARKET_MOVERS", "country": "us"}},
        {"name": "Get Stock Quote", "arguments": {"symbol": "AAPL"}},
    ]
    assert _gt(follow) == [{"Get Stock Quote": {"symbol": ["MSFT"]}}]

    # A text reply right after a user turn is a no-call answer.
    assert by_id["toolace-1-1"].category == "irrelevance" and by_id["toolace-1-1"].ground_truth == []
    single = by_id["toolace-1-3"]
    assert single.category == "single"
    # JSON-style `true` in the python-call answer, a nested dict in BFCL's per-key form.
    assert _gt(single) == [
        {
            "send_notification": {
                "user_id": [42],
                "message": ["Server restarted"],
                "options": [{"urgent": [True]}],
                "score": [0.5],
            }
        }
    ]
    assert single.reference_answer() == [
        ToolCall(
            "send_notification",
            {"user_id": 42, "message": "Server restarted", "options": {"urgent": True}, "score": 0.5},
        )
    ]
    # Types are stored in BFCL's vocabulary: object -> dict, number -> float.
    params = single.tools[0]["parameters"]
    assert params["type"] == "dict"
    assert params["properties"]["options"]["type"] == "dict"
    assert params["properties"]["score"]["type"] == "float"


def test_xlam_layout_and_category_inference():
    tasks, report = load_xlam(FIXTURES / "xlam_good.json")
    assert (report.read, report.loaded) == (4, 4)
    by_id = {t.id: t for t in tasks}
    assert {i: t.category for i, t in by_id.items()} == {
        "xlam-1": "parallel",
        "xlam-2": "parallel_multiple",
        "xlam-3": "multiple",
        "xlam-4": "single",
    }
    assert by_id["xlam-1"].messages == [
        {"role": "user", "content": "Where can I find live giveaways for beta access and games?"}
    ]
    assert _gt(by_id["xlam-1"]) == [
        {"live_giveaways_by_type": {"type": ["beta"]}},
        {"live_giveaways_by_type": {"type": ["game"]}},
    ]
    assert _gt(by_id["xlam-4"]) == [{"get_tags": {"tags": [["python", "rust"]]}}]

    # xLAM's {param: {type, description, default}} becomes a JSON-schema object.
    convert = by_id["xlam-2"].tools[1]
    assert convert["parameters"] == {
        "type": "dict",
        "properties": {
            "amount": {"type": "integer", "description": "Amount."},
            "is_from": {"type": "string", "description": "From."},
            "to": {"type": "string", "description": "To."},
            "date": {"type": "string", "description": "Rate date."},
        },
        "required": ["amount", "is_from", "to"],  # "str, optional" is not required
    }
    top = by_id["xlam-3"].tools[0]["parameters"]
    assert top["required"] == ["artist"]  # limit is optional and has a default
    assert top["properties"]["limit"] == {"type": "integer", "description": "How many.", "default": 10}
    assert by_id["xlam-4"].tools[0]["parameters"]["properties"]["tags"]["items"] == {"type": "string"}
    giveaway = by_id["xlam-1"].tools[0]["parameters"]
    assert giveaway["required"] == [] and giveaway["properties"]["type"]["default"] == "game"


def test_hammer_is_xlam_layout_with_its_own_tag():
    tasks, report = load_hammer(FIXTURES / "hammer_good.jsonl")
    assert report.source == "hammer" and report.loaded == 2
    assert [(t.id, t.source, t.category) for t in tasks] == [
        ("hammer-101", "hammer", "single"),
        ("hammer-102", "hammer", "irrelevance"),
    ]
    assert tasks[0].reference_answer() == [ToolCall("fn_q7x2", {"p_v1": 3.0, "p_u2": "mi", "p_u3": "km"})]


def test_apibank_one_task_per_api_turn():
    tasks, report = load_apibank(FIXTURES / "apibank_good.jsonl")
    assert (report.read, report.loaded) == (2, 3)
    token, alarm, search = tasks
    assert token.id == "api_bank-l1-AddAlarm-level-1-1-1"
    assert token.messages == [
        {"role": "user", "content": "Set an alarm for 2023-03-16 06:30:00. My username is foo and my password is bar."}
    ]
    assert _gt(token) == [{"GetUserToken": {"username": ["foo"], "password": ["bar"]}}]
    assert token.category == "multiple"  # two APIs offered, one called
    assert token.meta == {"level": 1, "expected_output": {"token": "z9x8"}, "expected_exception": None}
    # The second call sees the first one and its output.
    assert [m["role"] for m in alarm.messages] == ["user", "assistant", "tool"]
    assert alarm.messages[1]["tool_calls"] == [
        {"name": "GetUserToken", "arguments": {"username": "foo", "password": "bar"}}
    ]
    assert json.loads(alarm.messages[2]["content"]) == {"token": "z9x8"}
    assert _gt(alarm) == [{"AddAlarm": {"token": ["z9x8"], "time": ["2023-03-16 06:30:00"]}}]
    assert alarm.meta["expected_output"] == "success"
    assert alarm.tools[1]["parameters"]["required"] == ["token", "time"]
    assert alarm.tools[1]["output_parameters"]["status"]["type"] == "str"
    assert search.category == "single" and search.domain == "api_bank_level2" and search.meta["level"] == 2
    assert [m["role"] for m in search.messages] == ["user", "assistant"]


BAD_ROWS = {
    # file -> (format, [(line, field or None, words in the reason)]) in file order
    "toolace_bad.jsonl": (
        "toolace",
        [
            (2, "conversations[1].value", "unclosed"),
            (3, "system.tools[0].parameters.required", "not in properties"),
            (4, "conversations[1].value.calls[0].name", "Get Quote"),
            (5, None, "not valid JSON"),
            (6, None, "JSON object"),
        ],
    ),
    "xlam_bad.json": (
        "xlam",
        [
            (3, "tools[0].parameters.tags.type", "unknown type 'complex'"),
            (4, "answers", "not a valid JSON string"),
            (5, "answers[0].arguments.foo", "no parameter 'foo'"),
            (6, "query", "missing"),
            (7, "tools[2].parameters", "expected an object"),
        ],
    ),
    "apibank_bad.jsonl": (
        "api_bank",
        [
            (2, "level", "expected 1, 2 or 3"),
            (3, "dialogue[1].call[0].name", "QueryWeather"),
            (4, "apis[0].input_parameters.keywords.type", "unknown type 'blob'"),
        ],
    ),
}


@pytest.mark.parametrize("name", sorted(BAD_ROWS))
def test_malformed_row_raises_with_file_line_field(name):
    fmt, rows = BAD_ROWS[name]
    line, field, words = rows[0]
    with pytest.raises(DataError) as info:
        load_dataset(fmt, FIXTURES / name)
    err = info.value
    assert (Path(err.path).name, err.line, err.field) == (name, line, field)
    assert str(err).startswith(f"{FIXTURES / name}:{line}: field '{field}': ")
    assert words in str(err)


@pytest.mark.parametrize("name", sorted(BAD_ROWS))
def test_skip_mode_reports_every_skipped_row(name):
    fmt, rows = BAD_ROWS[name]
    tasks, report = load_dataset(fmt, FIXTURES / name, on_error="skip")
    assert report.skipped == len(rows) == len(report.skipped_rows)
    assert report.read == report.skipped + 1  # each bad file holds exactly one good record (the first)
    assert tasks and report.loaded == len(tasks)
    for skipped, (line, field, words) in zip(report.skipped_rows, rows, strict=True):
        assert (Path(skipped.path).name, skipped.line, skipped.field) == (name, line, field)
        assert words in skipped.reason


def test_json_list_records_keep_their_start_line(tmp_path):
    path = tmp_path / "list.json"
    path.write_text('[\n  {"a": 1},\n\n  {"b":\n   2},\n  {"c": [1,\n 2]}\n]\n')
    assert list(iter_records(path)) == [(2, {"a": 1}), (4, {"b": 2}), (6, {"c": [1, 2]})]
    broken = tmp_path / "broken.json"
    broken.write_text('[\n {"a": 1},\n {"b": }\n]')
    with pytest.raises(DataError) as info:
        list(iter_records(broken))
    assert info.value.line == 3


def test_unreadable_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="cannot read"):
        load_xlam(tmp_path / "missing.jsonl")
    binary = tmp_path / "bin.jsonl"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(DataError, match="not UTF-8"):
        load_xlam(binary)


def test_duplicate_ids_are_errors(tmp_path):
    row = (FIXTURES / "hammer_good.jsonl").read_text().splitlines()[0]
    path = tmp_path / "dup.jsonl"
    path.write_text(row + "\n" + row + "\n")
    with pytest.raises(DataError) as info:
        load_hammer(path)
    assert (info.value.line, info.value.field) == (2, "id")


@pytest.mark.parametrize(
    ("text", "calls"),
    [
        ("[f(a=1)]", [ToolCall("f", {"a": 1})]),
        (
            '[Get Weather(city="Oslo, NO"), g.h(x=[1, -2.5], y={"k": (1, 2)}, z=None)]',
            [
                ToolCall("Get Weather", {"city": "Oslo, NO"}),
                ToolCall("g.h", {"x": [1, -2.5], "y": {"k": [1, 2]}, "z": None}),
            ],
        ),
        ("[ping()]", [ToolCall("ping", {})]),
        ("[f(q='a), b(c) = d', flag=true, n=null)]", [ToolCall("f", {"q": "a), b(c) = d", "flag": True, "n": None})]),
        ("[]", []),
    ],
)
def test_python_call_lists_from_datasets(text, calls):
    assert parse_call_list(text) == calls


@pytest.mark.parametrize(
    "text",
    [
        "f(a=1)",
        "[f(1)]",
        "[f(a=b)]",
        "[f(a=1) g(b=2)]",
        "[f(a=__import__('os'))]",
        "[f(a=1, a=2)]",
        "[f(**k)]",
        "[f(a=1]",
        "[(a=1)]",
        "[f(a=" + "[" * 40 + "]" * 40 + ")]",
    ],
)
def test_python_call_lists_reject_non_literals_and_bad_syntax(text):
    with pytest.raises(CallSyntaxError):
        parse_call_list(text)

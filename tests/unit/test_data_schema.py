"""Tool-schema validation and type normalisation shared by all loaders."""

from __future__ import annotations

import copy

import pytest

from megatron_toolrl.data.convert import ground_truth_from_calls, infer_category
from megatron_toolrl.data.records import FieldError
from megatron_toolrl.data.schema import normalize_tool, normalize_tools, python_type_schema
from megatron_toolrl.data.task import ToolCall

GOOD = {
    "name": "book",
    "description": "Book a room.",
    "parameters": {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "City."},
            "nights": {"type": "integer"},
            "price": {"type": "number"},
            "tags": {"type": "array", "items": {"type": "str"}},
            "guest": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "age": {"type": "int"}},
                "required": ["name"],
            },
            "extra": {"type": "any", "x-note": "kept"},
        },
        "required": ["city"],
    },
    "x-vendor": 1,
}


def test_normalizes_types_and_keeps_everything_else():
    out = normalize_tool(GOOD, "tools[0]")
    props = out["parameters"]["properties"]
    assert out["parameters"]["type"] == "dict"
    assert [props[k]["type"] for k in ("city", "nights", "price", "tags", "guest", "extra")] == [
        "string",
        "integer",
        "float",
        "array",
        "dict",
        "any",
    ]
    assert props["tags"]["items"] == {"type": "string"}
    assert props["guest"]["properties"]["age"] == {"type": "integer"} and props["guest"]["required"] == ["name"]
    assert props["extra"]["x-note"] == "kept" and out["x-vendor"] == 1 and props["city"]["description"] == "City."
    assert GOOD["parameters"]["type"] == "object"  # the input is not modified
    assert normalize_tool(out, "t") == out  # idempotent


def _broken(path: list, value) -> dict:
    tool = copy.deepcopy(GOOD)
    target = tool
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return tool


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "field", "words"),
    [
        (["name"], "", "t.name", "non-empty"),
        (["name"], _DELETE, "t.name", "missing"),
        (["description"], 3, "t.description", "string"),
        (["parameters"], _DELETE, "t.parameters", "missing"),
        (["parameters"], [], "t.parameters", "expected an object"),
        (["parameters", "type"], "string", "t.parameters.type", "dict/object"),
        (["parameters", "properties"], [], "t.parameters.properties", "expected an object"),
        (["parameters", "required"], ["city", "zip"], "t.parameters.required", "['zip']"),
        (["parameters", "required"], "city", "t.parameters.required", "list"),
        (
            ["parameters", "properties", "nights", "type"],
            "int64",
            "t.parameters.properties.nights.type",
            "unknown type",
        ),
        (
            ["parameters", "properties", "nights", "type"],
            ["integer", "null"],
            "t.parameters.properties.nights.type",
            "type name",
        ),
        (["parameters", "properties", "nights"], "integer", "t.parameters.properties.nights", "expected an object"),
        (["parameters", "properties", "city", "type"], _DELETE, "t.parameters.properties.city.type", "missing"),
        (
            ["parameters", "properties", "tags", "items"],
            "string",
            "t.parameters.properties.tags.items",
            "expected an object",
        ),
        (
            ["parameters", "properties", "tags", "items", "type"],
            "blob",
            "t.parameters.properties.tags.items.type",
            "unknown type",
        ),
        (
            ["parameters", "properties", "guest", "required"],
            ["nick"],
            "t.parameters.properties.guest.required",
            "not in properties",
        ),
        (["parameters", "properties", "city", "enum"], "a|b", "t.parameters.properties.city.enum", "list"),
    ],
)
def test_each_rule_names_its_field(path, value, field, words):
    with pytest.raises(FieldError) as info:
        normalize_tool(_broken(path, value), "t")
    assert info.value.field == field
    assert words in info.value.reason


def test_tool_lists_need_unique_names():
    with pytest.raises(FieldError) as info:
        normalize_tools([GOOD, GOOD])
    assert info.value.field == "tools[1].name"


def test_missing_properties_and_required_mean_none():
    out = normalize_tool({"name": "ping", "parameters": {"type": "dict"}}, "t")
    assert out["parameters"] == {"type": "dict", "properties": {}, "required": []}
    assert (
        normalize_tool({"name": "ping", "parameters": {"type": "dict", "properties": {}, "required": None}}, "t")[
            "parameters"
        ]["required"]
        == []
    )


@pytest.mark.parametrize(
    ("text", "schema", "optional"),
    [
        ("str", {"type": "string"}, False),
        ("int, optional", {"type": "integer"}, True),
        ("float", {"type": "float"}, False),
        ("bool", {"type": "boolean"}, False),
        ("List[str]", {"type": "array", "items": {"type": "string"}}, False),
        ("List[int], optional", {"type": "array", "items": {"type": "integer"}}, True),
        ("List[Dict[str, Any]]", {"type": "array", "items": {"type": "dict"}}, False),
        ("list", {"type": "array"}, False),
        ("Optional[Dict]", {"type": "dict"}, True),
        ("Tuple[int, int]", {"type": "tuple"}, False),
        ("set", {"type": "array"}, False),
        ("Any", {"type": "any"}, False),
    ],
)
def test_python_type_strings(text, schema, optional):
    assert python_type_schema(text, "f") == (schema, optional)


@pytest.mark.parametrize("text", ["complex", "datetime.date", "", 5])
def test_unknown_python_types_are_errors(text):
    with pytest.raises(FieldError):
        python_type_schema(text, "f")


def test_ground_truth_round_trips_through_bfcl_form():
    calls = [ToolCall("f", {"a": 1, "b": {"x": [1, 2], "y": {"z": "q"}}, "c": [{"k": 1}, 2]})]
    gt = ground_truth_from_calls(calls)
    assert gt[0].arguments == {"a": [1], "b": [{"x": [[1, 2]], "y": [{"z": ["q"]}]}], "c": [[{"k": [1]}, 2]]}
    assert [g.canonical_call() for g in gt] == calls


@pytest.mark.parametrize(
    ("names", "n_tools", "category"),
    [
        ([], 3, "irrelevance"),
        (["f"], 1, "single"),
        (["f"], 2, "multiple"),
        (["f", "f"], 1, "parallel"),
        (["f", "g"], 2, "parallel_multiple"),
        (["f", "f"], 3, "parallel_multiple"),
    ],
)
def test_category_inference(names, n_tools, category):
    assert infer_category(names, n_tools) == category

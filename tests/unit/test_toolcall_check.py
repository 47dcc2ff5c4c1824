"""The AST checker, rule by rule. Expected verdicts are worked out by hand from BFCL's rules (the
rule is named in each comment); tests/integration/test_checker_vs_bfcl.py compares the same code
with bfcl-eval itself on the BFCL data."""

from __future__ import annotations

import pytest

from megatron_toolrl.data.task import GroundTruthCall, ToolCall
from megatron_toolrl.errors import DataError
from megatron_toolrl.toolcall import (
    BFCL_CATEGORY,
    OutputFormat,
    check,
    check_calls,
    render_calls,
    standardize_string,
)

ROUTE = {
    "name": "geo.route",
    "description": "Route between two places.",
    "parameters": {
        "type": "dict",
        "properties": {
            "origin": {"type": "string"},
            "destination": {"type": "string"},
            "unit": {"type": "string"},
            "precision": {"type": "integer"},
            "scale": {"type": "float"},
            "avoid": {"type": "array", "items": {"type": "string"}},
            "waypoint": {"type": "tuple", "items": {"type": "float"}},
            "options": {"type": "dict"},
            "stops": {"type": "array", "items": {"type": "dict"}},
            "verbose": {"type": "boolean"},
            "note": {"type": "any"},
            "count": {"type": "integer"},
            "traffic": {"type": "boolean"},
        },
        "required": ["origin", "destination"],
    },
}
WEATHER = {
    "name": "weather",
    "parameters": {"type": "dict", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                   "required": ["city"]},
}
TOOLS = [ROUTE, WEATHER]

ROUTE_GT = GroundTruthCall("geo.route", {
    "origin": ["New York, NY", "NYC"],
    "destination": ["Boston"],
    "unit": ["km", ""],
    "precision": [2, ""],
    "scale": [2.0, ""],
    "avoid": [["tolls", "ferries"], ""],
    "waypoint": [[1.5, 2.0], ""],
    "options": [{"mode": ["car", "bus"], "lang": ["en", ""]}, ""],
    "stops": [[{"city": ["Hartford"]}, {"city": ["Providence"]}], ""],
    "verbose": [False, ""],
    "note": ["fast", ""],
    "count": ["n_items", ""],  # a "variable" answer: a string for an integer parameter
})
BASE = {"origin": "New York, NY", "destination": "Boston"}


def _single(**arguments) -> tuple[bool, str]:
    result = check_calls([ROUTE], [ToolCall("geo.route", {**BASE, **arguments})], [ROUTE_GT], "single")
    return result.valid, result.error_type


def test_standardize_string_matches_bfcl_rules():
    # spaces and ,./-_*^ removed, lowercased, ' -> "
    assert standardize_string("April 1, 2024") == standardize_string("april 1 2024") == "april12024"
    assert standardize_string("New-York_City/NY.*^") == "newyorkcityny"
    assert standardize_string("it's") == 'it"s'
    assert standardize_string("tab\tkept") == "tab\tkept"  # only the space character is removed


def test_minimal_answer_and_function_name():
    assert _single() == (True, "")
    result = check_calls([ROUTE], [ToolCall("geo_route", BASE)], [ROUTE_GT], "single")
    assert (result.valid, result.error_type) == (False, "simple_function_checker:wrong_func_name")
    # BFCL's underscore_to_dot models must write the underscore form
    assert check_calls([ROUTE], [ToolCall("geo_route", BASE)], [ROUTE_GT], "single", underscore_to_dot=True).valid
    assert not check_calls([ROUTE], [ToolCall("geo.route", BASE)], [ROUTE_GT], "single", underscore_to_dot=True).valid


def test_required_unexpected_and_non_optional_parameters():
    result = check_calls([ROUTE], [ToolCall("geo.route", {"origin": "NYC"})], [ROUTE_GT], "single")
    assert (result.valid, result.error_type) == (False, "simple_function_checker:missing_required")
    # in the doc but not in the ground truth, or in neither
    assert _single(traffic=True) == (False, "simple_function_checker:unexpected_param")
    assert _single(foo=1) == (False, "simple_function_checker:unexpected_param")
    # a ground-truth parameter without "" must be given even if the doc does not require it
    strict = GroundTruthCall("geo.route", {**ROUTE_GT.arguments, "unit": ["km"]})
    result = check_calls([ROUTE], [ToolCall("geo.route", BASE)], [strict], "single")
    assert (result.valid, result.error_type) == (False, "simple_function_checker:missing_optional")


def test_strings_are_compared_normalised():
    assert _single(origin="new york ny")[0]
    assert _single(origin="NYC.")[0]
    assert _single(origin="New Jersey") == (False, "value_error:string")
    assert _single(note="FAST")[0]  # "any" is checked as a string
    assert _single(note=5) == (False, "type_error:simple")


def test_exact_python_types():
    assert _single(precision=2)[0]
    assert _single(precision=2.0) == (False, "type_error:simple")  # a float is not an integer
    assert _single(precision=True) == (False, "type_error:simple")  # a bool is not an integer
    assert _single(precision="2") == (False, "type_error:simple")
    assert _single(precision=3) == (False, "value_error:others")
    assert _single(scale=2)[0]  # an int is accepted for a float (converted)
    assert _single(scale=2.5) == (False, "value_error:others")
    assert _single(verbose=False)[0]
    assert _single(verbose=0) == (False, "type_error:simple")
    assert _single(scale=10**400) == (False, "value_error:others")  # too large for a float: no exception


def test_variable_answers_compare_without_normalisation():
    # the accepted value's type (str) differs from the doc's (integer): a str passes the type check
    # and is compared as is
    assert _single(count="n_items")[0]
    assert _single(count="N_ITEMS") == (False, "value_error:others")
    assert _single(count=3) == (False, "value_error:others")


def test_lists():
    assert _single(avoid=["Tolls", "ferries"])[0]  # items normalised
    assert _single(avoid=["ferries", "tolls"]) == (False, "value_error:list/tuple")  # order matters
    assert _single(avoid=["tolls"]) == (False, "value_error:list/tuple")
    assert _single(avoid=[])[0]  # BFCL quirk: [] equals the optional marker "" read as a sequence
    assert _single(avoid=("tolls", "ferries")) == (False, "type_error:simple")  # a tuple is not an array
    assert _single(waypoint=(1.5, 2.0))[0]  # a tuple is accepted for a tuple (as a list)
    assert _single(waypoint=[1.5, 2.0])[0]
    # Items are type-checked against each accepted list; a non-list accepted value (the optional
    # marker "") passes any items, so here a bad item is only caught by the value comparison...
    assert _single(avoid=[1, "ferries"]) == (False, "value_error:list/tuple")
    assert _single(waypoint=[1.5, 2])[0]  # ...and 2 == 2.0
    # ...while without "" the item types are enforced, with no int -> float inside lists.
    required = GroundTruthCall("geo.route", {**ROUTE_GT.arguments, "avoid": [["tolls"]], "waypoint": [[1.5, 2.0]]})
    call = ToolCall("geo.route", {**BASE, "avoid": [1], "waypoint": [1.5, 2.0]})
    result = check_calls([ROUTE], [call], [required], "single")
    assert (result.valid, result.error_type) == (False, "type_error:nested")
    call = ToolCall("geo.route", {**BASE, "avoid": ["tolls"], "waypoint": [1.5, 2]})
    result = check_calls([ROUTE], [call], [required], "single")
    assert (result.valid, result.error_type) == (False, "type_error:nested")


def test_dicts_and_lists_of_dicts():
    assert _single(options={"mode": "Car"})[0]  # values normalised, "lang" optional
    assert _single(options={"lang": "en", "mode": "bus"})[0]  # key order is irrelevant
    assert _single(options={"mode": "train"}) == (False, "value_error:dict_value")
    assert _single(options={"mode": "car", "speed": 1}) == (False, "value_error:dict_key")
    assert _single(options={}) == (False, "value_error:dict_key")  # "mode" missing
    assert _single(options=["car"]) == (False, "type_error:simple")
    assert _single(stops=[{"city": "hartford"}, {"city": "Providence"}])[0]
    # dicts are matched by position; the error reported is the last accepted value's ("" -> count)
    assert _single(stops=[{"city": "Providence"}, {"city": "Hartford"}]) == (False, "value_error:list_dict_count")
    assert _single(stops=[{"city": "Hartford"}]) == (False, "value_error:list_dict_count")
    # BFCL raises AttributeError on a non-dict inside a list of dicts (when "" let it past the item
    # type check); we reject it
    assert not _single(stops=[{"city": "Hartford"}, "Providence"])[0]


def test_json_schema_spellings():
    doc = {"name": "f", "parameters": {"type": "object", "properties": {
        "x": {"type": "number"}, "o": {"type": "object"}, "l": {"type": "list", "items": {"type": "integer"}}}}}
    gt = [GroundTruthCall("f", {"x": [3.0], "o": [{"a": [1]}], "l": [[1, 2]]})]
    assert check_calls([doc], [ToolCall("f", {"x": 3, "o": {"a": 1}, "l": [1, 2]})], gt, "single").valid
    assert not check_calls([doc], [ToolCall("f", {"x": 3, "o": {"a": 1}, "l": [1, "2"]})], gt, "single").valid


def test_multiple_picks_the_ground_truth_function():
    gt = [GroundTruthCall("weather", {"city": ["Boston"], "days": [3, ""]})]
    assert check_calls(TOOLS, [ToolCall("weather", {"city": "boston"})], gt, "multiple").valid
    result = check_calls(TOOLS, [ToolCall("geo.route", BASE)], gt, "multiple")
    assert (result.valid, result.error_type) == (False, "simple_function_checker:wrong_func_name")
    result = check_calls(TOOLS, [ToolCall("weather", {"city": "Boston"})] * 2, gt, "multiple")
    assert (result.valid, result.error_type) == (False, "multiple_function_checker:wrong_count")
    result = check_calls(TOOLS, [], gt, "single")
    assert (result.valid, result.error_type) == (False, "simple_function_checker:wrong_count")


def test_parallel_is_order_insensitive_and_greedy():
    gt = [GroundTruthCall("weather", {"city": ["Boston"]}), GroundTruthCall("weather", {"city": ["Paris"]})]
    boston, paris = ToolCall("weather", {"city": "Boston"}), ToolCall("weather", {"city": "Paris"})
    assert check_calls(TOOLS, [boston, paris], gt, "parallel").valid
    assert check_calls(TOOLS, [paris, boston], gt, "parallel").valid
    result = check_calls(TOOLS, [boston, boston], gt, "parallel")
    assert (result.valid, result.error_type) == (False, "parallel_function_checker_no_order:cannot_find_match")
    result = check_calls(TOOLS, [boston], gt, "parallel")
    assert (result.valid, result.error_type) == (False, "parallel_function_checker_no_order:wrong_count")
    # BFCL matches greedily: the first expected call takes the first call it accepts, even when
    # that leaves the second expected call without a match.
    loose = [GroundTruthCall("weather", {"city": ["Boston", "Paris"]}),
             GroundTruthCall("weather", {"city": ["Boston"]})]
    assert not check_calls(TOOLS, [boston, paris], loose, "parallel").valid
    assert check_calls(TOOLS, [paris, boston], loose, "parallel").valid


def test_parallel_multiple():
    gt = [ROUTE_GT, GroundTruthCall("weather", {"city": ["Boston"]})]
    calls = [ToolCall("weather", {"city": "Boston"}), ToolCall("geo.route", BASE)]
    assert check_calls(TOOLS, calls, gt, "parallel_multiple").valid
    assert not check_calls(TOOLS, calls[:1] * 2, gt, "parallel_multiple").valid


def test_irrelevance_means_no_call():
    assert check_calls(TOOLS, [], [], "irrelevance").valid
    result = check_calls(TOOLS, [ToolCall("weather", {"city": "x"})], [], "irrelevance")
    assert (result.valid, result.error_type) == (False, "irrelevance_error:decoder_success")
    for fmt in OutputFormat:
        # text that does not decode to a call is "no call", as in BFCL's relevance runner
        for text in ["I cannot help with that.", "", "<tool_call>{broken", "[f(x="]:
            assert check(TOOLS, text, [], "irrelevance", fmt).valid, (fmt, text)
        call_text = render_calls([ToolCall("weather", {"city": "x"})], fmt)
        assert not check(TOOLS, call_text, [], "irrelevance", fmt).valid


@pytest.mark.parametrize("fmt", list(OutputFormat))
def test_check_from_text_in_every_format(fmt):
    gt = [ROUTE_GT]
    good = render_calls([ToolCall("geo.route", {**BASE, "waypoint": (1.5, 2.0), "stops": [
        {"city": "Hartford"}, {"city": "Providence"}]})], fmt)
    result = check([ROUTE], "<think>route it</think>\n" + good, gt, "single", fmt)
    assert result.valid and result.parse.ok and result.parse.has_think and result.parse.think == "route it"
    assert result.calls == result.parse.calls
    bad = render_calls([ToolCall("geo.route", {**BASE, "destination": "Paris"})], fmt)
    assert check([ROUTE], bad, gt, "single", fmt).error_type == "value_error:string"
    broken = check([ROUTE], good[:-3], gt, "single", fmt)
    assert (broken.valid, broken.error_type) == (False, "ast_decoder:decoder_failed")
    assert broken.parse is not None and broken.parse.error


def test_bad_task_data_raises_data_error():
    with pytest.raises(DataError, match="not among the tools"):
        check_calls([WEATHER], [ToolCall("weather", {})], [ROUTE_GT], "single")
    with pytest.raises(DataError, match="exactly one ground-truth call"):
        check_calls(TOOLS, [ToolCall("weather", {})], [ROUTE_GT, ROUTE_GT], "single")
    with pytest.raises(DataError, match="needs at least one"):
        check_calls(TOOLS, [], [], "parallel")
    odd = {"name": "f", "parameters": {"properties": {"x": {"type": "str"}}}}
    with pytest.raises(DataError, match="unknown type 'str'") as info:
        check_calls([odd], [ToolCall("f", {"x": "a"})], [GroundTruthCall("f", {"x": ["a"]})], "single")
    assert info.value.field == "f.parameters.properties.x.type"
    with pytest.raises(ValueError, match="category"):
        check_calls(TOOLS, [], [], "simple")  # type: ignore[arg-type]


def test_category_names_map_to_bfcl():
    assert BFCL_CATEGORY == {"single": "simple", "multiple": "multiple", "parallel": "parallel",
                             "parallel_multiple": "parallel_multiple", "irrelevance": "irrelevance"}

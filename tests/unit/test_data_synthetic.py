"""The seeded synthetic task generator: determinism, category mix, and answers that are right.

Reference answers are checked with our BFCL-semantics checker here, and with bfcl-eval's own
`ast_checker` in test_data_synthetic_bfcl.py (its import alone takes several seconds).
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter

import pytest

from megatron_toolrl.data.convert import infer_category
from megatron_toolrl.data.schema import normalize_tools
from megatron_toolrl.data.synth_catalog import CATALOG, DOMAINS
from megatron_toolrl.data.synthetic import CALL_CATEGORIES, generate_tasks
from megatron_toolrl.toolcall import check_calls

N = 2000


@pytest.fixture(scope="module")
def tasks():
    return generate_tasks(N, seed=1234)


def _content(tasks):
    return [(t.messages, t.tools, t.ground_truth, t.category) for t in tasks]


def test_same_seed_same_tasks_and_prefix_stable(tasks):
    again = generate_tasks(N, seed=1234)
    assert again == tasks
    assert generate_tasks(50, seed=1234) == tasks[:50]


def test_different_seeds_differ(tasks):
    other = generate_tasks(200, seed=1235)
    same = sum(a == b for a, b in zip(_content(tasks[:200]), _content(other), strict=True))
    assert same < 10  # a few identical tiny tasks by chance at most


def test_irrelevance_rate_within_tolerance(tasks):
    for rate, sample in [(0.15, tasks), (0.4, generate_tasks(N, seed=7, irrelevance_rate=0.4))]:
        observed = sum(t.category == "irrelevance" for t in sample) / len(sample)
        sigma = math.sqrt(rate * (1 - rate) / len(sample))
        assert abs(observed - rate) < 4 * sigma, (rate, observed)
    assert not any(t.category == "irrelevance" for t in generate_tasks(300, seed=3, irrelevance_rate=0.0))


def test_category_mix(tasks):
    counts = Counter(t.category for t in tasks if t.category != "irrelevance")
    total = sum(counts.values())
    for category in CALL_CATEGORIES:
        # uniform over the four call categories: 25% each, 4 sigma is about 4%
        assert abs(counts[category] / total - 0.25) < 0.045, counts
    only = generate_tasks(200, seed=5, categories=("parallel",), irrelevance_rate=0.0)
    assert {t.category for t in only} == {"parallel"}


def test_shape_of_every_task(tasks):
    for task in tasks:
        assert 1 <= len(task.tools) <= 4
        assert normalize_tools(task.tools) == task.tools  # canonical, valid schemas
        assert infer_category([g.name for g in task.ground_truth], len(task.tools)) == task.category
        assert len(task.messages) == 1 and task.messages[0]["role"] == "user"
        if task.category in ("parallel", "parallel_multiple"):
            assert 2 <= len(task.ground_truth) <= 3
        if task.category == "irrelevance":
            assert task.meta["asked_function"] not in task.tool_names
            assert all(f.domain != task.meta["asked_domain"] for f in CATALOG if f.name in task.tool_names)


def test_reference_answers_pass_our_checker(tasks):
    for task in tasks:
        result = check_calls(task.tools, task.reference_answer(), task.ground_truth, task.category)
        assert result.valid, (task.id, result.error)


def _mentions(query: str, value) -> bool:
    """Is `value` written in the query (case-insensitive, numbers without trailing zeros)?"""
    q = query.lower()
    if isinstance(value, bool):
        return True  # booleans are stated by phrases ("on", "Include hourly details."), not literals
    if isinstance(value, (int, float)):
        text = str(int(value)) if float(value).is_integer() else repr(value)
        return re.search(rf"(?<![\d.]){re.escape(text)}(?![\d])", q) is not None
    if isinstance(value, str):
        return value.lower() in q
    if isinstance(value, list):
        return all(_mentions(query, v) for v in value)
    if isinstance(value, dict):
        return all(_mentions(query, v) for v in value.values())
    return False


def test_values_are_written_in_the_query(tasks):
    """Every argument the answer must hold (no "" = may omit) is readable from the request."""
    checked = 0
    for task in tasks:
        query = task.messages[0]["content"]
        for call in task.reference_answer():
            gt = next(g for g in task.ground_truth if g.name == call.name and g.canonical_call() == call)
            for param, value in call.arguments.items():
                if "" in gt.arguments[param]:
                    continue  # optional: either unstated (default) or stated equal to the default
                assert _mentions(query, value), (task.id, param, value, query)
                checked += 1
    assert checked > 3 * N


def test_catalog_is_consistent():
    assert len(DOMAINS) >= 12
    types = set()
    for function in CATALOG:
        required = {p.name for p in function.params if not p.optional}
        assert len(function.templates) >= 3, function.name
        for template in function.templates:
            fields = {name for _, name, _, _ in string.Formatter().parse(template) if name}
            assert fields == required, (function.name, template)
            assert not template.startswith("{"), template  # sentences can be joined with connectors
        for p in function.params:
            types.add("enum" if p.enum else p.type)
            if p.optional:
                assert p.clauses or all(p.bool_clauses), (function.name, p.name)
                if p.enum and p.default is not None:
                    assert p.default in p.enum
    assert types >= {"string", "integer", "float", "boolean", "enum", "array", "dict"}


def test_domains_filter_and_argument_checks():
    sample = generate_tasks(100, seed=2, domains=("weather", "math"), irrelevance_rate=0.2)
    names = {f.name for f in CATALOG if f.domain in ("weather", "math")}
    assert all(set(t.tool_names) <= names for t in sample)
    with pytest.raises(ValueError):
        generate_tasks(10, seed=0, domains=("weather",))  # irrelevance needs a second domain
    with pytest.raises(ValueError):
        generate_tasks(10, seed=0, categories=("irrelevance",))
    with pytest.raises(ValueError):
        generate_tasks(10, seed=0, domains=("astrology",))

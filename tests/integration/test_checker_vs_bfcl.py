"""Our AST checker against bfcl-eval's own checker, answer by answer, in every output format.

The answers: every accepted value of every parameter of BFCL v4 simple_python, multiple, parallel
and parallel_multiple (tests/bfcl_util.py: accepted_answers), plus seeded perturbations (wrong
value/type, int<->float, missing/extra argument, wrong name, dropped/duplicated/shuffled calls,
string spellings, nested dict edits, empty containers). Each answer is rendered as model text in
the four output formats. Ours: `check(text)`. BFCL: for the python format its own decoder
(`default_decode_ast_prompting`) then `ast_checker`; for the JSON formats, which BFCL cannot
decode, `ast_checker` on the `[{name: args}]` our parser produced. Our python parser must also
decode exactly what BFCL's decoder decodes.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from megatron_toolrl.data.task import GroundTruthCall, ToolCall
from megatron_toolrl.toolcall import OutputFormat, ParseLimits, check, check_calls, parse_calls, render_calls
from tests.bfcl_util import (
    AST_CATEGORIES,
    MODEL_DOTS_KEPT,
    MODEL_DOTS_TO_UNDERSCORES,
    BfclEntry,
    Case,
    Tally,
    agreement_cases,
    bfcl_decode_python,
    bfcl_verdict_decoded,
    bfcl_verdict_python_text,
    irrelevance_cases,
    load_bfcl,
    load_entries,
    load_irrelevance,
    to_bfcl_decoded,
)

SEED = 20261101
# Verdicts must not depend on a GC pause: the time budget is exercised by the fuzz test instead.
LIMITS = ParseLimits(max_seconds=1.0)


@pytest.fixture(scope="module")
def bfcl():
    return load_bfcl()


@pytest.fixture(scope="module")
def entries(bfcl):
    return [e for category in AST_CATEGORIES for e in load_entries(bfcl, category)]


def _compare(bfcl, cases: list[Case], model_name: str = MODEL_DOTS_KEPT, underscore_to_dot: bool = False) -> dict:
    """Run both checkers on every case in every format; return counts and the first disagreements."""
    report = {"checks": 0, "valid_disagree": [], "error_type_disagree": [], "decode_disagree": [],
              "bfcl_raised": [], "tally": Tally(), "ours_s": 0.0, "bfcl_s": 0.0, "formats": Counter()}
    for case in cases:
        entry = case.entry
        for fmt in OutputFormat:
            text = render_calls(case.calls, fmt)
            start = time.perf_counter()
            ours = check(entry.functions, text, entry.ground_truth, entry.category, fmt, LIMITS,
                         underscore_to_dot=underscore_to_dot)
            report["ours_s"] += time.perf_counter() - start
            start = time.perf_counter()
            if fmt is OutputFormat.PYTHON:
                theirs = bfcl_verdict_python_text(bfcl, entry, text, model_name)
                decoded = bfcl_decode_python(bfcl, text)
                ours_decoded = to_bfcl_decoded(ours.parse.calls) if ours.parse.ok else ours.parse.error
                if isinstance(decoded, Exception) or decoded != ours_decoded:
                    report["decode_disagree"].append((entry.id, text, repr(decoded)[:300], ours_decoded))
            else:
                # The renderer writes well-formed JSON: a parse failure here is a parser bug.
                assert ours.parse.ok, (entry.id, fmt, text, ours.parse.error)
                theirs = bfcl_verdict_decoded(bfcl, entry, to_bfcl_decoded(ours.parse.calls), model_name)
            report["bfcl_s"] += time.perf_counter() - start
            report["checks"] += 1
            report["formats"][fmt.value] += 1
            report["tally"].add(case.kind, theirs.valid)
            if theirs.raised is not None:
                report["bfcl_raised"].append((entry.id, case.kind, text, theirs.raised, ours.valid, ours.error_type))
                continue
            if theirs.valid != ours.valid:
                report["valid_disagree"].append(
                    (entry.id, case.kind, fmt.value, text, theirs, ours.error_type, ours.error))
            elif not theirs.valid and theirs.error_type != ours.error_type:  # a valid BFCL result carries a stale type
                report["error_type_disagree"].append(
                    (entry.id, case.kind, fmt.value, text, theirs.error_type, ours.error_type))
    return report


def _print_report(title: str, report: dict) -> None:
    tally: Tally = report["tally"]
    print(f"\n== {title}: {report['checks']} checks ({dict(report['formats'])}), "
          f"BFCL-valid {tally.valid}, BFCL raised {len(report['bfcl_raised'])}; "
          f"ours {report['ours_s']:.2f} s (parse+check), BFCL {report['bfcl_s']:.2f} s")
    print(f"{'kind':36s} {'checks':>7s} {'valid':>7s}")
    for kind, (n, valid) in sorted(tally.by_kind.items()):
        print(f"{kind:36s} {n:7d} {valid:7d}")
    print(f"disagreements: valid {len(report['valid_disagree'])}, error_type {len(report['error_type_disagree'])}, "
          f"python decoding {len(report['decode_disagree'])}")


def _assert_agreement(report: dict) -> None:
    valid, decode = report["valid_disagree"], report["decode_disagree"]
    assert not valid, f"{len(valid)} verdicts differ, e.g. {valid[:5]}"
    assert not decode, f"{len(decode)} decodings differ, e.g. {decode[:5]}"
    # BFCL raising means it has no verdict (its runner would crash). Ours must still answer, and
    # reject: every such input seen so far is malformed (e.g. a non-dict in a list of dicts).
    for entry_id, kind, text, raised, ours_valid, _ours_type in report["bfcl_raised"]:
        assert not ours_valid, f"BFCL raised {raised} on {entry_id} {kind} {text!r} but we accepted it"
    assert not report["error_type_disagree"], (
        f"{len(report['error_type_disagree'])} error types differ, e.g. {report['error_type_disagree'][:5]}")


def test_bfcl_model_flags(bfcl):
    # The model names the comparison hands to BFCL select its `.`->`_` function-name rule.
    assert bfcl.model_config[MODEL_DOTS_KEPT].underscore_to_dot is False
    assert bfcl.model_config[MODEL_DOTS_TO_UNDERSCORES].underscore_to_dot is True


def test_checker_agrees_with_bfcl_on_ast_categories(bfcl, entries):
    assert {e.bfcl_category for e in entries} == set(AST_CATEGORIES)
    assert len(entries) == 1000  # 400 simple_python + 200 each of the others (bfcl-eval 2026.3.23)
    cases = agreement_cases(entries)
    kinds = Counter(c.kind.split(":")[0] for c in cases)
    assert kinds["perturb"] >= 2000, kinds
    report = _compare(bfcl, cases)
    _print_report("AST categories", report)
    tally: Tally = report["tally"]
    # The set is not one-sided: answers built from the possible answers are valid for BFCL (all but
    # a handful where BFCL's data contradicts its own checker: an answer marked optional ("") for a
    # parameter the doc requires, e.g. simple_python_17; or the greedy parallel matching failing on
    # a reordered answer, e.g. parallel_178), and most perturbations are not.
    accepted = sum(n for k, (n, _) in tally.by_kind.items() if k.startswith("accepted:"))
    accepted_valid = sum(v for k, (_, v) in tally.by_kind.items() if k.startswith("accepted:"))
    assert accepted > 10_000 and accepted - accepted_valid < 0.01 * accepted
    assert tally.total - tally.valid > 6_000
    _assert_agreement(report)


def test_checker_agrees_with_bfcl_on_irrelevance(bfcl):
    irrelevance = load_irrelevance(bfcl)
    assert len(irrelevance) == 240
    cases = irrelevance_cases(irrelevance, SEED)
    report = _compare(bfcl, cases)
    _print_report("irrelevance", report)
    assert 0 < report["tally"].valid < report["checks"]
    _assert_agreement(report)
    # Text that is not a call list is "no call" for BFCL's relevance rule, and for ours.
    entry = irrelevance[0]
    for text in ["I cannot help with that.", "", "[]", "```\n[]\n```", "[f(x=]"]:
        ours = check(entry.functions, text, [], "irrelevance", OutputFormat.PYTHON, LIMITS)
        assert ours.valid == bfcl_verdict_python_text(bfcl, entry, text).valid, text


def test_function_name_underscores_agree_with_bfcl(bfcl, entries):
    # BFCL's underscore_to_dot models must write `math_factorial` for the function `math.factorial`.
    dotted = [e for e in entries if any("." in gt.name for gt in e.ground_truth)]
    assert len(dotted) > 100
    cases = []
    for e in dotted:
        canonical = [gt.canonical_call() for gt in e.ground_truth]
        underscored = [ToolCall(c.name.replace(".", "_"), c.arguments) for c in canonical]
        cases.append(Case(e, underscored, "accepted:underscored"))
        cases.append(Case(e, canonical, "perturb:dotted"))
    report = _compare(bfcl, cases, MODEL_DOTS_TO_UNDERSCORES, underscore_to_dot=True)
    _print_report("underscore_to_dot", report)
    # (a canonical answer or two is invalid for BFCL anyway: see the note in the test above)
    assert report["tally"].by_kind["accepted:underscored"][1] >= 0.99 * len(dotted) * len(OutputFormat)
    assert report["tally"].by_kind["perturb:dotted"][1] == 0
    _assert_agreement(report)
    # and with the flag off (our default), the dotted name is the right one
    e = dotted[0]
    calls = [gt.canonical_call() for gt in e.ground_truth]
    assert check_calls(e.functions, calls, e.ground_truth, e.category).valid


def test_python_parser_decodes_like_bfcl_on_hand_written_text(bfcl):
    # Spellings a model may use that the renderer does not produce: no brackets, fences, spacing,
    # double quotes, nested literals, negative numbers, dotted names.
    texts = [
        "f(a=1)",
        "f(a=1), g(b='x')",
        "```\n[f(a=1)]\n```",
        "[ f( a = -1.5 , b = \"it's\" ) ]",
        "[mod.sub.f(a={'k': [1, (2, 3)], 'n': None}, b=True)]",
        "[f(a=[], b={}, c=())]",
        "[f()]",
        "[]",
        "",
    ]
    for text in texts:
        ours = parse_calls(text, OutputFormat.PYTHON)
        assert ours.ok, (text, ours.error)
        assert to_bfcl_decoded(ours.calls) == bfcl_decode_python(bfcl, text), text


def test_inputs_where_bfcl_raises_are_rejected_by_ours(bfcl):
    # BFCL's data never triggers these, so the entry is made up: a list-of-dicts parameter that is
    # also optional (""). The optional marker lets any items past BFCL's item type check, and its
    # dict checker then calls `.items()` on a string. BFCL has no verdict (its runner would stop);
    # ours rejects the answer, and accepts the correct one as BFCL does.
    raw = [{"g": {"stops": [[{"city": ["Hartford"]}, {"city": ["Providence"]}], ""]}}]
    entry = BfclEntry(
        id="made_up_0", bfcl_category="simple_python", category="single",
        functions=[{"name": "g", "parameters": {
            "type": "dict", "required": [], "properties": {"stops": {"type": "array", "items": {"type": "dict"}}}}}],
        ground_truth=[GroundTruthCall.from_bfcl(g) for g in raw], raw_ground_truth=raw)
    good = Case(entry, [ToolCall("g", {"stops": [{"city": "Hartford"}, {"city": "providence"}]})], "accepted:made_up")
    bad = Case(entry, [ToolCall("g", {"stops": [{"city": "Hartford"}, "Providence"]})], "perturb:non_dict_item")
    report = _compare(bfcl, [good, bad])
    _print_report("made-up entry where BFCL raises", report)
    assert report["tally"].by_kind["accepted:made_up"] == [4, 4]
    assert len(report["bfcl_raised"]) == 4 and all("AttributeError" in r[3] for r in report["bfcl_raised"])
    _assert_agreement(report)

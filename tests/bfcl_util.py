"""BFCL v4 data and bfcl-eval's own checker and decoder, plus the answer set the agreement test and
bench/bench_reward.py feed to both checkers.

bfcl-eval is imported lazily (`load_bfcl`, ~4 s) after BFCL_PROJECT_ROOT points at a temp dir,
because its import creates folders there. Nothing here re-implements BFCL: verdicts come from
`bfcl_eval.eval_checker.ast_eval.ast_checker.ast_checker` and, for irrelevance, from BFCL's
relevance rule (decode with `default_decode_ast_prompting`; correct iff that fails or is empty).
"""

from __future__ import annotations

import copy
import json
import os
import random
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from megatron_toolrl.data.task import Category, GroundTruthCall, ToolCall

# BFCL's checker needs a model name: it reads `underscore_to_dot` from MODEL_CONFIG_MAPPING.
MODEL_DOTS_KEPT = "gorilla-openfunctions-v2"
"""A BFCL model whose config has underscore_to_dot=False (our checker's default)."""
MODEL_DOTS_TO_UNDERSCORES = "DeepSeek-V3.2-Exp-FC"
"""A BFCL model whose config has underscore_to_dot=True."""

AST_CATEGORIES: dict[str, Category] = {
    "simple_python": "single",
    "multiple": "multiple",
    "parallel": "parallel",
    "parallel_multiple": "parallel_multiple",
}
"""BFCL v4 AST test categories (python) -> our Category."""


@dataclass
class BfclEntry:
    """One BFCL test entry with its possible answers."""

    id: str
    bfcl_category: str
    category: Category
    functions: list[dict[str, Any]]
    ground_truth: list[GroundTruthCall]
    raw_ground_truth: list[dict[str, Any]]
    """BFCL's own `ground_truth` list, handed to BFCL's checker untouched."""


@dataclass(frozen=True)
class Verdict:
    """BFCL's verdict on one answer. `raised` holds the exception when BFCL's code raised instead."""

    valid: bool
    error_type: str
    raised: str | None = None


@dataclass
class Case:
    """One answer to one entry, as calls (rendered into each output format by the caller)."""

    entry: BfclEntry
    calls: list[ToolCall]
    kind: str
    """`accepted:<how>` for answers built from the possible answers, `perturb:<how>` otherwise."""


def load_bfcl() -> SimpleNamespace:
    """Import bfcl-eval's checker, decoder and data paths (sets BFCL_PROJECT_ROOT if unset)."""
    os.environ.setdefault("BFCL_PROJECT_ROOT", tempfile.mkdtemp(prefix="bfcl_root_"))
    from bfcl_eval.constants.enums import Language
    from bfcl_eval.constants.eval_config import POSSIBLE_ANSWER_PATH, PROMPT_PATH
    from bfcl_eval.constants.model_config import MODEL_CONFIG_MAPPING
    from bfcl_eval.eval_checker.ast_eval.ast_checker import ast_checker
    from bfcl_eval.model_handler.utils import default_decode_ast_prompting
    from bfcl_eval.utils import is_empty_output, is_function_calling_format_output

    return SimpleNamespace(
        ast_checker=ast_checker,
        decode_python=default_decode_ast_prompting,
        is_empty_output=is_empty_output,
        is_function_calling_format_output=is_function_calling_format_output,
        python=Language.PYTHON,
        model_config=MODEL_CONFIG_MAPPING,
        prompt_dir=Path(PROMPT_PATH),
        answer_dir=Path(POSSIBLE_ANSWER_PATH),
    )


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def load_entries(bfcl: SimpleNamespace, bfcl_category: str) -> list[BfclEntry]:
    """All entries of one BFCL v4 AST category, paired with their possible answers by id."""
    prompts = _read_jsonl(bfcl.prompt_dir / f"BFCL_v4_{bfcl_category}.json")
    answers = {a["id"]: a["ground_truth"] for a in _read_jsonl(bfcl.answer_dir / f"BFCL_v4_{bfcl_category}.json")}
    entries = []
    for p in prompts:
        raw = answers[p["id"]]
        entries.append(BfclEntry(
            id=p["id"], bfcl_category=bfcl_category, category=AST_CATEGORIES[bfcl_category],
            functions=p["function"], ground_truth=[GroundTruthCall.from_bfcl(g) for g in raw], raw_ground_truth=raw,
        ))
    return entries


def load_irrelevance(bfcl: SimpleNamespace) -> list[BfclEntry]:
    """BFCL v4 `irrelevance` entries (no possible answers: the right answer is no call)."""
    return [
        BfclEntry(id=p["id"], bfcl_category="irrelevance", category="irrelevance", functions=p["function"],
                  ground_truth=[], raw_ground_truth=[])
        for p in _read_jsonl(bfcl.prompt_dir / "BFCL_v4_irrelevance.json")
    ]


def to_bfcl_decoded(calls: list[ToolCall]) -> list[dict[str, dict[str, Any]]]:
    """Calls in the layout BFCL's decoders produce: `[{name: {arg: value}}]`."""
    return [{c.name: c.arguments} for c in calls]


def bfcl_verdict_decoded(bfcl: SimpleNamespace, entry: BfclEntry, decoded: list[dict[str, Any]],
                         model_name: str = MODEL_DOTS_KEPT) -> Verdict:
    """BFCL's verdict on decoded calls, as its AST runner computes it after a successful decode."""
    if entry.category == "irrelevance":
        empty = bfcl.is_empty_output(decoded)
        return Verdict(empty, "" if empty else "irrelevance_error:decoder_success")
    if not bfcl.is_function_calling_format_output(decoded):
        return Verdict(False, "ast_decoder:decoder_wrong_output_format")
    try:
        # The checker mutates nothing we reuse, but copy so a quirk there cannot leak between cases.
        result = bfcl.ast_checker(entry.functions, copy.deepcopy(decoded), entry.raw_ground_truth, bfcl.python,
                                  entry.bfcl_category, model_name)
    except Exception as exc:  # noqa: BLE001 - recorded, the test reports and checks these explicitly
        return Verdict(False, "bfcl_raised", raised=f"{type(exc).__name__}: {exc}")
    return Verdict(bool(result["valid"]), result.get("error_type", ""))


def bfcl_decode_python(bfcl: SimpleNamespace, text: str) -> list[dict[str, Any]] | Exception:
    """BFCL's decoding of python-call text, or the exception it raised."""
    try:
        return bfcl.decode_python(text)
    except Exception as exc:  # noqa: BLE001 - a decode failure is a verdict, not a test error
        return exc


def bfcl_verdict_python_text(bfcl: SimpleNamespace, entry: BfclEntry, text: str,
                             model_name: str = MODEL_DOTS_KEPT) -> Verdict:
    """BFCL's verdict on python-call text: its own decoder, then its checker (or relevance rule)."""
    decoded = bfcl_decode_python(bfcl, text)
    if isinstance(decoded, Exception):
        if entry.category == "irrelevance":
            return Verdict(True, "")
        return Verdict(False, "ast_decoder:decoder_failed")
    return bfcl_verdict_decoded(bfcl, entry, decoded, model_name)


# ---------------------------------------------------------------------------------------------
# Answers: every accepted value of every parameter, then seeded perturbations.

_OMIT = object()


def _concrete(option: Any) -> list[Any]:
    """Concrete values for one accepted value: the value itself, or for a dict (whose values are
    accepted-value lists, BFCL's nested possible answers) one value per accepted inner alternative."""
    if isinstance(option, dict):
        base = {k: _first(v) for k, v in option.items()}
        variants = [{k: v for k, v in base.items() if v is not _OMIT}]
        for key, inner in option.items():
            for alt in inner[1:] if isinstance(inner, list) else []:
                changed = dict(base)
                changed[key] = _OMIT if alt == "" else alt
                variants.append({k: v for k, v in changed.items() if v is not _OMIT})
        return variants
    if isinstance(option, list) and any(isinstance(x, dict) for x in option):
        return [[_concrete(x)[0] if isinstance(x, dict) else x for x in option]]
    return [option]


def _first(options: Any) -> Any:
    for option in options if isinstance(options, list) else [options]:
        if option != "":
            return _concrete(option)[0]
    return _OMIT


def _canonical(gt: GroundTruthCall) -> dict[str, Any]:
    return {k: v for k, v in ((k, _first(opts)) for k, opts in gt.arguments.items()) if v is not _OMIT}


def _tuple_params(entry: BfclEntry, name: str) -> set[str]:
    for f in entry.functions:
        if f["name"] == name:
            return {p for p, s in f["parameters"]["properties"].items() if s.get("type") == "tuple"}
    return set()


def accepted_answers(entry: BfclEntry) -> list[tuple[str, list[ToolCall]]]:
    """Answers built from the possible answers, covering every accepted value of every parameter
    (and every accepted inner value of dict parameters) at least once, optional ones left out too."""
    base = [_canonical(gt) for gt in entry.ground_truth]
    canonical = [ToolCall(gt.name, dict(a)) for gt, a in zip(entry.ground_truth, base, strict=True)]
    answers = [("accepted:canonical", canonical)]
    for i, gt in enumerate(entry.ground_truth):
        for param, options in gt.arguments.items():
            seen_first = False
            for option in options:
                values = [_OMIT] if option == "" else _concrete(option)
                for j, value in enumerate(values):
                    if not seen_first and option != "" and j == 0:
                        seen_first = True  # the canonical answer already holds this one
                        continue
                    args = [dict(a) for a in base]
                    if value is _OMIT:
                        args[i].pop(param, None)
                    else:
                        args[i][param] = copy.deepcopy(value)
                    kind = "accepted:omitted" if value is _OMIT else "accepted:alternative"
                    calls = [ToolCall(g.name, a) for g, a in zip(entry.ground_truth, args, strict=True)]
                    answers.append((kind, calls))
        tuples = _tuple_params(entry, gt.name) & set(base[i])
        if tuples:  # a python-format model may write a tuple; BFCL converts it back to a list
            args = [dict(a) for a in base]
            for p in tuples:
                if isinstance(args[i][p], list):
                    args[i][p] = tuple(args[i][p])
            calls = [ToolCall(g.name, a) for g, a in zip(entry.ground_truth, args, strict=True)]
            answers.append(("accepted:tuple", calls))
    if len(entry.ground_truth) > 1:
        answers.append(("accepted:reversed", list(reversed(answers[0][1]))))
    return answers


def _wrong_value(value: Any, rng: random.Random) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + rng.choice([1, -1, 7, 100])
    if isinstance(value, float):
        return value + rng.choice([0.5, -1.25, 10.0])
    if isinstance(value, str):
        return rng.choice([value + " extra", "zz" + value, value[::-1] + "q", ""])
    if isinstance(value, (list, tuple)):
        return list(value)[:-1] if value and rng.random() < 0.5 else list(value) + (list(value)[:1] or ["x"])
    if isinstance(value, dict):
        if value and rng.random() < 0.5:
            key = rng.choice(sorted(value))
            changed = dict(value)
            changed[key] = _wrong_value(value[key], rng)
            return changed
        return {**value, "unexpected_key": "x"}
    return "changed"


def _wrong_type(value: Any, rng: random.Random) -> Any:
    if isinstance(value, bool):
        return rng.choice([int(value), str(value).lower(), None])
    if isinstance(value, int):
        return rng.choice([float(value), str(value), [value], True])
    if isinstance(value, float):
        # int(value) of an integral float is accepted by BFCL (int -> float); a good agreement probe
        return rng.choice([int(value), str(value), [value], None])
    if isinstance(value, str):
        return rng.choice([len(value), [value], {"value": value}, True, None])
    if isinstance(value, (list, tuple)):
        return rng.choice([tuple(value), value[0] if value else "", {"items": list(value)}, json.dumps(list(value))])
    if isinstance(value, dict):
        return rng.choice([list(value.items()), json.dumps(value), [value], None])
    return 0


def _string_variant(value: str, rng: random.Random) -> str:
    """A spelling BFCL's standardize_string maps to the same string (mostly) or not (sometimes)."""
    return rng.choice([value.upper(), value.lower(), value.replace(" ", "-"), value.replace(" ", ""),
                       value + ".", value.replace(",", ""), value.replace("'", '"'), " " + value + " ", value.title()])


PERTURBATIONS = ("wrong_value", "wrong_type", "int_float_swap", "nested_edit", "missing_required", "extra_argument",
                 "schema_argument_not_in_gt", "drop_optional", "string_variant", "wrong_name", "drop_call",
                 "duplicate_call", "shuffle_calls", "swap_argument_values", "empty_container", "list_item_case")


def perturbed_answers(entry: BfclEntry, rng: random.Random, count: int) -> list[tuple[str, list[ToolCall]]]:
    """`count` seeded edits of the canonical answer (some still correct under BFCL's rules)."""
    base = accepted_answers(entry)[0][1]
    out: list[tuple[str, list[ToolCall]]] = []
    attempts = 0
    while len(out) < count and attempts < 20 * count:
        attempts += 1
        kind = rng.choice(PERTURBATIONS)
        calls = [ToolCall(c.name, copy.deepcopy(c.arguments)) for c in base]
        edited = _perturb(entry, calls, kind, rng)
        if edited is not None:
            out.append((f"perturb:{kind}", edited))
    return out


def _perturb(entry: BfclEntry, calls: list[ToolCall], kind: str, rng: random.Random) -> list[ToolCall] | None:
    i = rng.randrange(len(calls))
    call, gt = calls[i], entry.ground_truth[i]
    args = call.arguments
    doc = next(f for f in entry.functions if f["name"] == gt.name)
    props = doc["parameters"]["properties"]
    required = doc["parameters"].get("required", [])

    def replace(new_args: dict[str, Any] | None = None, name: str | None = None) -> list[ToolCall]:
        """The answer with call i renamed and/or given new arguments."""
        edited = ToolCall(name or call.name, args if new_args is None else new_args)
        return calls[:i] + [edited] + calls[i + 1:]

    if kind in ("wrong_value", "wrong_type", "string_variant"):
        strings = sorted(k for k, v in args.items() if isinstance(v, str))
        candidates = strings if kind == "string_variant" else sorted(args)
        if not candidates:
            return None
        key = rng.choice(candidates)
        edit: Callable[[Any, random.Random], Any] = {"wrong_value": _wrong_value, "wrong_type": _wrong_type,
                                                     "string_variant": _string_variant}[kind]
        return replace({**args, key: edit(args[key], rng)})
    if kind == "int_float_swap":
        # integer <-> float spellings: BFCL accepts an int for a float parameter, not a float for an integer
        keys = sorted(k for k, v in args.items() if props.get(k, {}).get("type") in ("integer", "float")
                      and type(v) in (int, float) and float(v).is_integer())
        if not keys:
            return None
        key = rng.choice(keys)
        return replace({**args, key: float(args[key]) if type(args[key]) is int else int(args[key])})
    if kind == "nested_edit":
        keys = sorted(k for k, v in args.items()
                      if isinstance(v, dict) or (isinstance(v, list) and v and isinstance(v[0], dict)))
        if not keys:
            return None
        key = rng.choice(keys)
        value = copy.deepcopy(args[key])
        target = value if isinstance(value, dict) else rng.choice(value)
        action = rng.choice(["drop_key", "add_key", "change", "drop_item", "non_dict_item"] if isinstance(value, list)
                            else ["drop_key", "add_key", "change"])
        if action == "drop_item":
            value.pop(rng.randrange(len(value)))
        elif action == "non_dict_item":  # BFCL's dict checker raises on this when "" is accepted too
            value[rng.randrange(len(value))] = "not a dict"
        elif action == "drop_key" and target:
            target.pop(rng.choice(sorted(target)))
        elif action == "add_key":
            target["extra_key"] = "x"
        elif target:
            inner = rng.choice(sorted(target))
            target[inner] = _wrong_value(target[inner], rng)
        return replace({**args, key: value})
    if kind == "empty_container":
        # BFCL quirk probe: an empty list matches the optional marker "" (len("") == 0)
        keys = sorted(k for k, v in args.items() if isinstance(v, (list, dict)))
        if not keys:
            return None
        key = rng.choice(keys)
        return replace({**args, key: type(args[key])()})
    if kind == "list_item_case":
        keys = sorted(k for k, v in args.items() if isinstance(v, list) and any(isinstance(x, str) for x in v))
        if not keys:
            return None
        key = rng.choice(keys)
        return replace({**args, key: [_string_variant(x, rng) if isinstance(x, str) else x for x in args[key]]})
    if kind == "missing_required":
        present = [p for p in required if p in args]
        if not present:
            return None
        dropped = rng.choice(present)
        return replace({k: v for k, v in args.items() if k != dropped})
    if kind == "extra_argument":
        return replace({**args, rng.choice(["extra", "unit", "verbose"]): rng.choice([1, "yes", True])})
    if kind == "schema_argument_not_in_gt":
        missing = sorted(set(props) - set(args))
        if not missing:
            return None
        key = rng.choice(missing)
        options = gt.arguments.get(key)
        value = _first(options) if options else _example_for(props[key].get("type"), rng)
        return replace({**args, key: _example_for(props[key].get("type"), rng) if value is _OMIT else value})
    if kind == "drop_optional":
        optional = sorted(k for k in args if "" in gt.arguments.get(k, []))
        if not optional:
            return None
        dropped = rng.choice(optional)
        return replace({k: v for k, v in args.items() if k != dropped})
    if kind == "wrong_name":
        others = [f["name"] for f in entry.functions if f["name"] != call.name]
        return replace(name=rng.choice(others) if others and rng.random() < 0.7 else call.name + "_v2")
    if kind == "drop_call":
        return calls[:i] + calls[i + 1:]
    if kind == "duplicate_call":
        return calls[:i + 1] + [ToolCall(call.name, copy.deepcopy(args))] + calls[i + 1:]
    if kind == "shuffle_calls":
        if len(calls) < 2:
            return None
        shuffled = list(calls)
        rng.shuffle(shuffled)
        return shuffled
    if kind == "swap_argument_values":
        if len(args) < 2:
            return None
        a, b = rng.sample(sorted(args), 2)
        return replace({**args, a: args[b], b: args[a]})
    raise AssertionError(kind)


def _example_for(schema_type: Any, rng: random.Random) -> Any:
    return {"string": "example", "integer": rng.randint(0, 9), "float": 1.5, "boolean": True, "array": ["a"],
            "tuple": [1, 2], "dict": {"k": "v"}}.get(schema_type, "example")


def build_cases(entries: list[BfclEntry], seed: int, perturbations_per_entry: int) -> list[Case]:
    """Every accepted answer of every entry, plus `perturbations_per_entry` seeded perturbations each."""
    rng = random.Random(seed)
    cases: list[Case] = []
    for entry in entries:
        cases.extend(Case(entry, calls, kind) for kind, calls in accepted_answers(entry))
        cases.extend(Case(entry, calls, kind) for kind, calls in perturbed_answers(entry, rng, perturbations_per_entry))
    return cases


def nested_cases(entries: list[BfclEntry], seed: int, per_entry: int) -> list[Case]:
    """Extra seeded edits of the few answers with dict or list-of-dict arguments (BFCL's dict rules)."""
    rng = random.Random(seed)
    cases = []
    for entry in entries:
        base = accepted_answers(entry)[0][1]
        if not any(isinstance(v, dict) or (isinstance(v, list) and v and isinstance(v[0], dict))
                   for c in base for v in c.arguments.values()):
            continue
        for kind in ("nested_edit", "empty_container", "string_variant", "wrong_type") * per_entry:
            calls = _perturb(entry, [ToolCall(c.name, copy.deepcopy(c.arguments)) for c in base], kind, rng)
            if calls is not None:
                cases.append(Case(entry, calls, f"perturb:{kind}"))
    return cases


def irrelevance_cases(entries: list[BfclEntry], seed: int) -> list[Case]:
    """For each irrelevance entry: no call, and a call of one of its functions with example values."""
    rng = random.Random(seed)
    cases = []
    for entry in entries:
        cases.append(Case(entry, [], "accepted:no_call"))
        f = rng.choice(entry.functions)
        args = {p: _example_for(s.get("type"), rng) for p, s in f["parameters"]["properties"].items()
                if p in f["parameters"].get("required", [])}
        cases.append(Case(entry, [ToolCall(f["name"], args)], "perturb:call_when_irrelevant"))
    return cases


AGREEMENT_SEED = 20261101
PERTURBATIONS_PER_ENTRY = 3
NESTED_EDITS_PER_ENTRY = 5


def agreement_cases(entries: list[BfclEntry]) -> list[Case]:
    """The answer set of the agreement test (and of bench/bench_reward.py): every accepted answer,
    3 seeded perturbations per entry, and extra edits of the answers with dict arguments."""
    return (build_cases(entries, AGREEMENT_SEED, PERTURBATIONS_PER_ENTRY)
            + nested_cases(entries, AGREEMENT_SEED + 1, NESTED_EDITS_PER_ENTRY))


@dataclass
class Tally:
    """Counts for the printed summary of a comparison run."""

    total: int = 0
    valid: int = 0
    by_kind: dict[str, list[int]] = field(default_factory=dict)
    """kind -> [cases, BFCL-valid]."""

    def add(self, kind: str, valid: bool) -> None:
        self.total += 1
        self.valid += valid
        row = self.by_kind.setdefault(kind, [0, 0])
        row[0] += 1
        row[1] += valid

"""10,000 seeded adversarial model outputs through `check` (parse + score), in every format.

Megabyte strings, deep nesting in JSON and Python syntax, lone surrogates and control characters,
code in python-call syntax that would create a marker file if anything evaluated it, JSON bombs,
huge numbers, NaN/Infinity, and random edits of well-formed answers. Asserted: no exception
escapes, nothing is executed (no marker file, no exec/eval/os.system/subprocess audit event), and
every parse-and-score takes under 10 ms.
"""

from __future__ import annotations

import gc
import random
import statistics
import sys
import time
from pathlib import Path

import pytest

from megatron_toolrl.data.task import GroundTruthCall, ToolCall
from megatron_toolrl.toolcall import OutputFormat, ParseLimits, check, parse_calls, render_calls

SEED = 20261102
N_INPUTS = 10_000
WARMUP = 50
BUDGET_S = 0.010

TOOLS = [
    {"name": "search.web", "parameters": {"type": "dict", "required": ["query"], "properties": {
        "query": {"type": "string"}, "limit": {"type": "integer"}, "score": {"type": "float"},
        "tags": {"type": "array", "items": {"type": "string"}}, "filters": {"type": "dict"},
        "rows": {"type": "array", "items": {"type": "dict"}}, "point": {"type": "tuple", "items": {"type": "float"}},
        "exact": {"type": "boolean"}}}},
    {"name": "weather",
     "parameters": {"type": "dict", "required": ["city"], "properties": {"city": {"type": "string"}}}},
]
GROUND_TRUTH = {
    "single": [GroundTruthCall("search.web", {"query": ["cats"], "limit": [3, ""], "score": [0.5, ""],
                                              "tags": [["a", "b"], ""], "filters": [{"lang": ["en"]}, ""],
                                              "rows": [[{"k": [1]}], ""], "point": [[1.0, 2.0], ""],
                                              "exact": [True, ""]})],
    "multiple": [GroundTruthCall("weather", {"city": ["Paris"]})],
    "parallel": [GroundTruthCall("weather", {"city": ["Paris"]}), GroundTruthCall("weather", {"city": ["Rome"]})],
    "irrelevance": [],
}
GOOD_ANSWERS = [
    [ToolCall("search.web", {"query": "cats", "limit": 3, "score": 0.5, "tags": ["a", "b"], "filters": {"lang": "en"},
                             "rows": [{"k": 1}], "point": (1.0, 2.0), "exact": True})],
    [ToolCall("weather", {"city": "Paris"})],
    [ToolCall("weather", {"city": "Rome"}), ToolCall("weather", {"city": "Paris"})],
    [],
]

# --- what would betray execution ----------------------------------------------------------------

_WATCHED_EVENTS = {"exec", "os.system", "subprocess.Popen", "os.posix_spawn", "os.exec", "os.spawn", "os.fork",
                   "os.remove", "shutil.rmtree", "ctypes.dlopen", "builtins.input", "socket.connect"}
_seen_events: list[str] = []
_watching = False
_hooked = False


def _audit(event: str, args: tuple) -> None:
    # ast.parse raises the "compile" event (it compiles to an AST only): that one is expected.
    if _watching and (event in _WATCHED_EVENTS or (event == "open" and "pwned" in str(args[:1]))):
        _seen_events.append(event)


def _watch_audit_events() -> None:
    """Install the audit hook once per process; it cannot be removed, `_watching` keeps it silent."""
    global _hooked
    if not _hooked:
        sys.addaudithook(_audit)
        _hooked = True


# --- adversarial inputs ---------------------------------------------------------------------------

def _injections(marker: Path) -> list[str]:
    m = str(marker)
    touch = f"__import__('os').system('touch {m}')"
    return [
        f"[{touch}]",
        touch,
        f"[f(a={touch})]",
        f"[search.web(query={touch})]",
        f"[f(a=eval(\"{touch}\"))]",
        f"[f(a=exec(\"open('{m}', 'w')\"))]",
        f"[f(a=open('{m}', 'w'))]",
        f"[f(a=(lambda: {touch})())]",
        "[f(a=[c for c in ().__class__.__base__.__subclasses__()])]",
        f"[f(a=f\"{{{touch}}}\")]",
        f"[f(a=1 + {touch})]",  # BFCL's own decoder evals BinOps: this is the one it would run
        f"[f(a=-{touch})]",
        f"[f(a={{'k': {touch}}})]",
        f"[f(a=[{touch}])]",
        f"[f(a=({touch},))]",
        f"[f(**{{'a': {touch}}})]",
        f"[{touch}.f(a=1)]",
        "[f(a=1)][0].__class__",
        f"import os; os.system('touch {m}')",
        f"[f(a=(x := {touch}))]",
        f"[f(a={touch} if 1 else 0)]",
        "[f(a=9**9**9)]",
        "[f(a='x' * 10**10)]",
        "[f(a=globals())]",
        "[f(a=breakpoint())]",
        f"[f(a=__builtins__.__dict__['exec'](\"open('{m}', 'w')\"))]",
        f"[f(a=\"\"\"{touch}\"\"\")]",  # a string: harmless, and stays a string
        f'<tool_call>{{"name": "f", "arguments": {{"a": "{touch}"}}}}</tool_call>',
    ]


def _mega(rng: random.Random) -> str:
    unit = rng.choice(["A", "[", "{", "<tool_call>", '{"a":', "f(a=", "\ud800", "\x00", "9", " ", "'"])
    return unit * (1_000_000 // len(unit) + rng.randint(1, 50))


def _deep(rng: random.Random) -> str:
    n = rng.choice([31, 32, 33, 34, 35, 200, 999, 1001, 5000, 30_000])
    opener, closer = rng.choice([("[", "]"), ("{", "}"), ("(", ")"), ('{"a": ', "}"), ("{'a': ", "}"), ("f(a=", ")"),
                                 ("-", ""), ("not ", ""), ("lambda: ", ""), ("a.", "b"), ("1 if 1 else ", "1"),
                                 ("x[0]" * 0 + "g()", ""), ("~", ""), ("await ", "")])
    body = opener * n + "1" + closer * n * rng.choice([0, 1])
    return rng.choice([
        f"[search.web(query={body})]",
        f'<tool_call>{{"name": "search.web", "arguments": {{"query": {body}}}}}</tool_call>',
        f"<tool_call>[{{\"name\": \"weather\", \"arguments\": {body}}}]</tool_call>",
        body,
    ])


def _json_bomb(rng: random.Random) -> str:
    kind = rng.randrange(8)
    if kind == 0:
        inner = ", ".join(f'"k{i}": {i}' for i in range(rng.choice([100, 2000, 6000])))
    elif kind == 1:
        inner = '"a": ' + rng.choice(["NaN", "Infinity", "-Infinity", "1e999", "-1e99999", "0." + "0" * 60_000 + "1"])
    elif kind == 2:
        inner = '"a": ' + "9" * rng.choice([100, 4300, 4301, 20_000])
    elif kind == 3:
        inner = '"a": 1, "a": 2'
    elif kind == 4:
        inner = '"a": "' + "\\ud800" * rng.randint(1, 500) + '"'
    elif kind == 5:
        inner = '"a": "' + "".join(chr(rng.randrange(32)) for _ in range(rng.randint(1, 100))) + '"'
    elif kind == 6:
        inner = '"a": [' + ",".join(["[]"] * rng.choice([10, 5000])) + "]"
    else:
        inner = '"a": "' + "\\u0000\\uZZZZ" * rng.randint(1, 10) + '"'
    obj = '{"name": "search.web", "arguments": {' + inner + "}}"
    return rng.choice([f"<tool_call>{obj}</tool_call>", f"<tool_call>\n[{obj}]\n</tool_call>",
                       f"<tool_call>\n{obj}\n{obj}\n</tool_call>"])


def _python_numbers(rng: random.Random) -> str:
    value = rng.choice(["9" * 4300, "9" * 4301, "-" + "9" * 400, "1e999", "-1e999", "1e-999", "0x" + "f" * 1000,
                        "1_000_000", "0b101", "1j", "nan", "float('nan')", "9**9**9", "10**400",
                        "1" + "0" * 400 + ".0"])
    key = rng.choice(["score", "limit", "query", "point"])
    return f"[search.web(query='cats', {key}={value})]"


def _unicode(rng: random.Random) -> str:
    pool = ["\ud800", "\udfff", "\x00", "\x1b[2J", "\u202e", "\ufeff", "\U0001f600", "\r", "\x7f", "\u2028", "é", "\t"]
    good = render_calls(rng.choice(GOOD_ANSWERS[:3]), rng.choice(list(OutputFormat)))
    chars = list(good)
    for _ in range(rng.randint(1, 8)):
        chars.insert(rng.randint(0, len(chars)), rng.choice(pool))
    return "".join(chars)


_EDIT_POOL = list("[](){}:,'\"=.-\\ \n#") + ["<tool_call>", "</tool_call>", "<think>", "</think>", "null", "True",
                                              "__import__", "lambda", "\ud800", "1e999", "NaN"]


def _mutated(rng: random.Random) -> str:
    answer = render_calls(rng.choice(GOOD_ANSWERS), rng.choice(list(OutputFormat)))
    text = rng.choice(["", "<think>hmm</think>"]) + answer
    chars = list(text)
    for _ in range(rng.randint(1, 6)):
        op = rng.randrange(4)
        at = rng.randint(0, len(chars))
        if op == 0:
            chars.insert(at, rng.choice(_EDIT_POOL))
        elif op == 1 and chars:
            del chars[min(at, len(chars) - 1)]
        elif op == 2 and chars:
            chars[min(at, len(chars) - 1)] = rng.choice(_EDIT_POOL)
        else:
            chars = chars[:at]  # truncation
    return "".join(chars)


def _soup(rng: random.Random) -> str:
    n = rng.choice([10, 1000, 65_536, 65_537])
    alphabet = rng.choice(["[](){},:=\"'abc123 -", "".join(chr(i) for i in range(32, 127)), "\"\\'"])
    return "".join(rng.choices(alphabet, k=n))


def _inputs(marker: Path) -> list[tuple[str, OutputFormat, str]]:
    rng = random.Random(SEED)
    formats = list(OutputFormat)
    out = [(text, fmt, "injection") for text in _injections(marker) for fmt in formats]
    megas = [_mega(rng) for _ in range(12)]  # a dozen distinct megabyte strings, reused
    makers = [(_deep, 12), (_json_bomb, 10), (_python_numbers, 8), (_unicode, 10), (_mutated, 50), (_soup, 6)]
    kinds = [k for k, w in makers for _ in range(w)]
    while len(out) < N_INPUTS:
        fmt = rng.choice(formats)
        if rng.random() < 0.01:
            out.append((rng.choice(megas), fmt, "mega"))
            continue
        maker = rng.choice(kinds)
        out.append((maker(rng), fmt, maker.__name__.lstrip("_")))
    return out


def test_adversarial_outputs(tmp_path):
    global _watching
    marker = tmp_path / "pwned"
    inputs = _inputs(marker)
    assert len(inputs) == N_INPUTS
    categories = list(GROUND_TRUTH)
    cpu, wall, kinds = [], [], []
    _watch_audit_events()
    _seen_events.clear()
    # A full (generation-2) collection walks every object of the process: with torch and the rest
    # of a test session loaded that is tens of ms, billed to whichever call triggers it. Objects
    # that exist before the loop are frozen out of collections; whatever parsing allocates is still
    # collected, inside the timed calls.
    gc.collect()
    gc.freeze()
    _watching = True
    try:
        for i, (text, fmt, kind) in enumerate(inputs):
            category = categories[i % len(categories)]
            wall_start, cpu_start = time.perf_counter(), time.thread_time()
            try:
                result = check(TOOLS, text, GROUND_TRUTH[category], category, fmt)
            except Exception as exc:  # noqa: BLE001 - turn it into a readable failure
                pytest.fail(f"check raised {type(exc).__name__}: {exc} on input #{i} ({kind}, {fmt.value}): "
                            f"{text[:300]!r}")
            cpu.append(time.thread_time() - cpu_start)
            wall.append(time.perf_counter() - wall_start)
            kinds.append(kind)
            assert isinstance(result.valid, bool)
    finally:
        _watching = False
        gc.unfreeze()

    assert not marker.exists(), "a payload was executed"
    assert not _seen_events, f"audited events during parsing: {sorted(set(_seen_events))}"
    # control: the hook does see an exec when one happens
    _watching = True
    try:
        exec("pass")  # noqa: S102 - a constant, to prove the hook is live
    finally:
        _watching = False
    assert _seen_events == ["exec"]
    # every python-syntax injection is refused by the python parser (none decodes to a call)
    for text in _injections(marker)[:-2]:
        result = parse_calls(text, OutputFormat.PYTHON)
        assert not result.ok, text

    # Timing. CPU time of this thread is what parse-and-score costs; wall time on a shared 2-core
    # machine also holds other processes' time slices, so it is reported but not asserted. The
    # strict bound (every call, p100) holds on CPU time.
    measured = cpu[WARMUP:]
    worst = max(range(len(measured)), key=measured.__getitem__)
    p999 = int(0.999 * len(measured))
    print(f"\nfuzz: {len(measured)} inputs after {WARMUP} warm-up; CPU ms: median "
          f"{statistics.median(measured) * 1e3:.3f}, p99.9 {sorted(measured)[p999] * 1e3:.2f}, "
          f"max {measured[worst] * 1e3:.2f} ({kinds[WARMUP + worst]}); wall ms: p99.9 "
          f"{sorted(wall[WARMUP:])[p999] * 1e3:.2f}, max {max(wall[WARMUP:]) * 1e3:.2f}")
    assert measured[worst] < BUDGET_S, (
        f"input #{WARMUP + worst} ({kinds[WARMUP + worst]}) took {measured[worst] * 1e3:.1f} ms of CPU: "
        f"{inputs[WARMUP + worst][0][:200]!r}")


def test_time_budget_is_reported_not_raised():
    # a budget too small for anything: the answer is an error, never an exception
    text = render_calls(GOOD_ANSWERS[0], OutputFormat.PYTHON)
    result = check(TOOLS, text, GROUND_TRUTH["single"], "single", OutputFormat.PYTHON, ParseLimits(max_seconds=1e-9))
    assert not result.valid and "time budget" in result.parse.error

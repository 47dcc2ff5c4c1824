"""Tool-calling tasks: the records, dataset loaders, the synthetic generator and demonstrations.

    task.py        ToolTask, ToolCall, GroundTruthCall, Category (shared types)
    records.py     reading JSON / JSON Lines rows with line numbers; LoadReport; on_error="raise"|"skip"
    schema.py      tool-schema validation, BFCL type names; xLAM/API-Bank python type strings
    convert.py     answers -> BFCL possible-answer ground truth; category inference
    bfcl.py        BFCL v4 single-turn categories from the bfcl-eval package (evaluation only)
    toolace.py, xlam.py (xLAM + Hammer), apibank.py, jsonl.py (canonical file, write_jsonl/load_jsonl)
    loaders.py     load_dataset(fmt, path, on_error) over the above
    synthetic.py   generate_tasks(n, seed, ...) over synth_catalog.py (15 domains) / synth_spec.py
    augment.py     irrelevance_variants: Tool-N1-style irrelevance augmentation of loaded data
    demos.py       Demo, DemoPool.select(task, k, rng): few-shot demonstrations

Submodules are imported directly (`from megatron_toolrl.data.synthetic import generate_tasks`);
this package imports nothing so that `data.task` stays free of import cycles.
"""

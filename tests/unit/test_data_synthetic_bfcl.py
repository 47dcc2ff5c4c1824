"""Generated reference answers against bfcl-eval's own AST checker (an independent implementation).

Kept apart from test_data_synthetic.py because importing bfcl_eval's checker pulls in every API
model handler it ships (several seconds); the checks themselves take well under a second.
"""

from __future__ import annotations

from bfcl_eval.constants.enums import Language
from bfcl_eval.eval_checker.ast_eval.ast_checker import ast_checker

from megatron_toolrl.data.synthetic import generate_tasks
from megatron_toolrl.toolcall import BFCL_CATEGORY


def test_reference_answers_pass_bfcl_own_checker():
    tasks = generate_tasks(600, seed=1234)
    checked = 0
    for task in tasks:
        if task.category == "irrelevance":
            continue
        output = [{c.name: c.arguments} for c in task.reference_answer()]
        bfcl_category = {"single": "simple_python"}.get(task.category, BFCL_CATEGORY[task.category])
        result = ast_checker(
            task.tools,
            output,
            [g.to_bfcl() for g in task.ground_truth],
            Language.PYTHON,
            bfcl_category,
            "Qwen/Qwen3-8B",  # any configured model; it only decides underscore_to_dot (off for Qwen)
        )
        assert result["valid"], (task.id, result)
        checked += 1
    assert checked > 450  # about 85% of the tasks have calls

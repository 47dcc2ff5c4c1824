"""Importing bfcl-eval without its import-time side effects landing in site-packages.

`bfcl_eval.constants.eval_config` creates `result/`, `score/` and lock folders under
`BFCL_PROJECT_ROOT` (default: the package directory) when it is imported, so the variable must be
set first. Importing also takes a few seconds (it loads every model handler), so it happens on
first use, never when this package is imported.
"""

from __future__ import annotations

import functools
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable


@dataclass(frozen=True)
class Bfcl:
    """The pieces of bfcl-eval the evaluator uses (its own decoder and checker)."""

    ast_checker: Callable[..., dict[str, Any]]
    decode_ast_prompting: Callable[..., list[dict[str, Any]]]
    is_empty_output: Callable[[Any], bool]
    is_function_calling_format_output: Callable[[Any], bool]
    load_dataset_entry: Callable[..., list[dict[str, Any]]]
    load_ground_truth_entry: Callable[[str], list[dict[str, Any]]]
    language_python: Any
    return_format_python: Any
    model_config_mapping: dict[str, Any]
    project_root: str


def set_project_root(project_root: str | Path | None) -> str:
    """Point BFCL_PROJECT_ROOT at `project_root` (or a fresh temp dir) unless it is already set.

    Returns the directory in use. Once bfcl_eval is imported the variable no longer matters.
    """
    current = os.environ.get("BFCL_PROJECT_ROOT")
    if current:
        return current
    root = Path(project_root) if project_root is not None else Path(tempfile.mkdtemp(prefix="bfcl_root_"))
    root.mkdir(parents=True, exist_ok=True)
    os.environ["BFCL_PROJECT_ROOT"] = str(root)
    return str(root)


@functools.lru_cache(maxsize=1)
def _import() -> Bfcl:
    from bfcl_eval.constants.enums import Language, ReturnFormat
    from bfcl_eval.constants.model_config import MODEL_CONFIG_MAPPING
    from bfcl_eval.eval_checker.ast_eval.ast_checker import ast_checker
    from bfcl_eval.model_handler.utils import default_decode_ast_prompting
    from bfcl_eval.utils import (
        is_empty_output,
        is_function_calling_format_output,
        load_dataset_entry,
        load_ground_truth_entry,
    )

    return Bfcl(
        ast_checker=ast_checker,
        decode_ast_prompting=default_decode_ast_prompting,
        is_empty_output=is_empty_output,
        is_function_calling_format_output=is_function_calling_format_output,
        load_dataset_entry=load_dataset_entry,
        load_ground_truth_entry=load_ground_truth_entry,
        language_python=Language.PYTHON,
        return_format_python=ReturnFormat.PYTHON,
        model_config_mapping=MODEL_CONFIG_MAPPING,
        project_root=os.environ.get("BFCL_PROJECT_ROOT", ""),
    )


def import_bfcl(project_root: str | Path | None = None) -> Bfcl:
    """bfcl-eval's decoder, checker and data loaders, importing the package on first call."""
    if "bfcl_eval.constants.eval_config" not in sys.modules:
        set_project_root(project_root)
    return _import()

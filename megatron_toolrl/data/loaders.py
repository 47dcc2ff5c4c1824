"""One entry point over the dataset loaders, for configs that name a dataset format."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, get_args

from megatron_toolrl.data.apibank import load_apibank
from megatron_toolrl.data.bfcl import BFCL_TO_CATEGORY, load_bfcl_category
from megatron_toolrl.data.jsonl import load_jsonl
from megatron_toolrl.data.records import LoadReport, OnError
from megatron_toolrl.data.task import ToolTask
from megatron_toolrl.data.toolace import load_toolace
from megatron_toolrl.data.xlam import load_hammer, load_xlam

DatasetFormat = Literal["jsonl", "toolace", "xlam", "hammer", "api_bank", "bfcl"]
DATASET_FORMATS: tuple[str, ...] = get_args(DatasetFormat)


def load_dataset(
    fmt: DatasetFormat, path: str | Path, on_error: OnError = "raise"
) -> tuple[list[ToolTask], LoadReport]:
    """Load `path` in layout `fmt`. For `bfcl`, `path` is a BFCL category name
    (`simple_python`, `live_multiple`, ...) read from the installed bfcl-eval package."""
    if fmt == "jsonl":
        return load_jsonl(path, on_error)
    if fmt == "toolace":
        return load_toolace(path, on_error)
    if fmt == "xlam":
        return load_xlam(path, on_error)
    if fmt == "hammer":
        return load_hammer(path, on_error)
    if fmt == "api_bank":
        return load_apibank(path, on_error)
    if fmt == "bfcl":
        category = str(path)
        if category not in BFCL_TO_CATEGORY:
            raise ValueError(
                f"for fmt='bfcl' give a BFCL category, one of {sorted(BFCL_TO_CATEGORY)}; got {category!r}"
            )
        return load_bfcl_category(category, on_error=on_error)  # type: ignore[arg-type]
    raise ValueError(f"unknown dataset format {fmt!r}; expected one of {DATASET_FORMATS}")
